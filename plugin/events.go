package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bringup"
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
	// What happened to the bundle itself is the engine's to tell: the
	// supervisor's events of a restarted bundle begin at its restart, and
	// a bundle that is down tells nothing.
	p, err := loadPlan(opts.name)
	if err != nil {
		return err
	}
	bs, err := bringup.Inspect(ctx, dockerCli.Client(), p)
	if err != nil {
		return err
	}
	var pre []api.Event
	if typ := bs.Event(); typ != "" {
		when := bs.Ended
		if when.IsZero() {
			when = time.Now()
		}
		pre = append(pre, api.Event{Time: when, Source: "engine", Type: typ, Message: bs.Reason()})
	}
	if !bs.Serving {
		out := dockerCli.Out()
		print := printEvent(out, opts.format)
		if opts.format == "table" {
			writeRow(out, eventWidths, "TIME", "SOURCE", "TYPE", "MESSAGE")
		}
		for _, e := range pre {
			print(e)
		}
		reason := bs.Reason()
		if reason == "" {
			reason = "it is " + bs.Status
		}
		return fmt.Errorf("the bundle of bottle %s is not running, so it has no events to show: %s; start it with `docker bottle start %s`",
			p.Slug, reason, p.Slug)
	}
	sup, err := supervisorOf(ctx, dockerCli.Client(), p)
	if err != nil {
		return err
	}
	return stream[api.Event]{
		pre:  pre,
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
