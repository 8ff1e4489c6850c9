package plugin

import (
	"context"
	"encoding/json"
	"io"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

type eventsOptions struct {
	name   string
	follow bool
	format string
}

func eventsCmd(dockerCli command.Cli) *cobra.Command {
	var opts eventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] NAME",
		Short: "Show what happened in a bottle: the agent's hooks, the proxy, the gate, approvals",
		Args:  cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			return runEvents(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.follow, "follow", "f", false, "Follow new events until interrupted")
	cmd.Flags().StringVar(&opts.format, "format", "table", `Output format: "table" or "json" (one object per line)`)
	return cmd
}

var eventWidths = []int{25, 10, 20}

func runEvents(ctx context.Context, dockerCli command.Cli, opts eventsOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	sup, err := openSupervisor(opts.name)
	if err != nil {
		return err
	}
	return stream[api.Event]{
		list: sup.c.Events, follow: sup.c.FollowEvents, seq: func(e api.Event) uint64 { return e.Seq },
		header: []string{"TIME", "SOURCE", "TYPE", "MESSAGE"}, widths: eventWidths, print: printEvent,
	}.show(ctx, dockerCli, sup, opts.follow, opts.format)
}

func printEvent(out io.Writer, format string) func(api.Event) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		return func(e api.Event) error { return enc.Encode(e) }
	}
	return func(e api.Event) error {
		return writeRow(out, eventWidths, localTime(e.Time), clean(e.Source), clean(e.Type), clean(e.Message))
	}
}
