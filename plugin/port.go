package plugin

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

type portOptions struct {
	name string
	port string
}

func portCmd(dockerCli command.Cli) *cobra.Command {
	var opts portOptions
	return &cobra.Command{
		Use:   "port BOTTLE [[HOSTPORT:]PORT]",
		Short: "List the agent's published ports, or publish one more on a running bottle",
		Long: "Without PORT, list the agent's ports reachable on the host's loopback, as `docker port` does. " +
			"With PORT, print where it is reachable, publishing it first when the bottle does not yet " +
			"(docker backend: up to " + strconv.Itoa(bringup.RelayPool) + " ports a bottle). Publishing opens no way out of the bottle.",
		Args:              cli.RequiresRangeArgs(1, 2),
		ValidArgsFunction: completeBottles(dockerCli),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			if len(args) == 2 {
				opts.port = args[1]
			}
			return runPort(cmd.Context(), dockerCli, opts)
		},
	}
}

func runPort(ctx context.Context, dockerCli command.Cli, opts portOptions) error {
	if err := refusePorts(dockerCli.DockerEndpoint().Host); err != nil {
		return err
	}
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return err
	}
	p, err := svc.Load(opts.name)
	if err != nil {
		return err
	}
	if opts.port == "" {
		ps, err := publishedPorts(ctx, dockerCli, svc, p)
		if err != nil {
			return err
		}
		for _, pub := range ps {
			fmt.Fprintln(dockerCli.Out(), pub)
		}
		return nil
	}
	want, err := spec.ParsePort(opts.port)
	if err != nil {
		return err
	}
	if st := svc.Status(ctx, p); !st.Running() {
		return fmt.Errorf("%s is %s: start it with docker bottle start %s to publish a port", p.Slug, st.State, p.Slug)
	}
	b, err := svc.Backend(p)
	if err != nil {
		return err
	}
	if _, ok := b.(backend.PortPublisher); ok {
		// Its ports were fixed when its agent was made: a declared one is
		// shown, any other refused by Publish with the remedy.
		ps, err := publishedPorts(ctx, dockerCli, svc, p)
		if err != nil {
			return err
		}
		for _, pub := range ps {
			if pub.Agent == want.Agent {
				fmt.Fprintln(dockerCli.Out(), pub.Host)
				return nil
			}
		}
	}
	pub, err := bringup.Publish(ctx, dockerCli.Client(), p, want)
	if err != nil {
		return err
	}
	fmt.Fprintln(dockerCli.Out(), pub.Host)
	return nil
}

// publishedPorts lists where the agent's ports are reachable: through the
// relay on the docker backend; on smolvm at the host ports the machine was
// made with (smolvm's --port, on the host's loopback).
func publishedPorts(ctx context.Context, dockerCli command.Cli, svc *bottles.Service, p plan.Plan) ([]bringup.Published, error) {
	b, err := svc.Backend(p)
	if err != nil {
		return nil, err
	}
	pp, ok := b.(backend.PortPublisher)
	if !ok {
		return bringup.Ports(ctx, dockerCli.Client(), p, 0)
	}
	ports, err := pp.PublishedPorts(p)
	if err != nil {
		return nil, err
	}
	var out []bringup.Published
	for _, port := range ports {
		out = append(out, bringup.Published{Agent: port.Agent, Host: "127.0.0.1:" + strconv.Itoa(port.Host)})
	}
	return out, nil
}

// portsFlag is `run --publish`, repeatable.
type portsFlag []spec.Port

func (f *portsFlag) String() string {
	s := make([]string, len(*f))
	for i, p := range *f {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (f *portsFlag) Set(v string) error {
	p, err := spec.ParsePort(v)
	if err != nil {
		return err
	}
	*f = append(*f, p)
	return nil
}

func (f *portsFlag) Type() string { return "[HOSTPORT:]PORT" }
