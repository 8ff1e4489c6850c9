package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
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
	cmd.Flags().StringVar(&opts.format, "format", "table", formatUsage(".Time .Source .Type .Message .Seq"))
	return cmd
}

var eventWidths = []int{25, 10, 20}

func runEvents(ctx context.Context, dockerCli command.Cli, opts eventsOptions) error {
	events := stream[api.Event]{
		header: []string{"TIME", "SOURCE", "TYPE", "MESSAGE"}, widths: eventWidths,
		row: func(e api.Event) []string {
			c := eventContext{e: e}
			return []string{c.Time(), c.Source(), c.Type(), c.Message()}
		},
		context: func(e api.Event) formatter.SubContext { return &eventContext{e: e} },
		fields:  newEventContext(),
	}
	if err := events.check(opts.format); err != nil {
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
	if typ := bs.Event(); typ != "" {
		when := bs.Ended
		if when.IsZero() {
			when = time.Now()
		}
		events.pre = append(events.pre, api.Event{Time: when, Source: "engine", Type: typ, Message: bs.Reason()})
	}
	if !bs.Serving {
		if err := events.write(dockerCli.Out(), opts.format, events.pre); err != nil {
			return err
		}
		reason := bs.Reason()
		if reason == "" {
			reason = "it is " + bs.Status
		}
		return fmt.Errorf("the bundle of bottle %s is not running, so it has no events to show: %s; start it with `docker bottle start %s`",
			p.Slug, reason, p.Slug)
	}
	sup, err := supervisorOf(ctx, dockerCli, p)
	if err != nil {
		return err
	}
	events.list, events.follow = sup.c.Events, sup.c.FollowEvents
	events.seq = func(e api.Event) uint64 { return e.Seq }
	return events.show(ctx, dockerCli, sup, opts.follow, opts.format)
}

// eventContext is an event as --format templates see it; what the bottle
// sent is made safe for a terminal.
type eventContext struct {
	formatter.HeaderContext
	e api.Event
}

func newEventContext() *eventContext {
	return &eventContext{HeaderContext: formatter.HeaderContext{Header: formatter.SubHeaderContext{
		"Time": "TIME", "Source": "SOURCE", "Type": "TYPE", "Message": "MESSAGE", "Seq": "SEQ",
	}}}
}

// MarshalJSON is the event as the supervisor's API has it.
func (c *eventContext) MarshalJSON() ([]byte, error) { return json.Marshal(c.e) }

func (c *eventContext) Time() string    { return localTime(c.e.Time) }
func (c *eventContext) Source() string  { return clean(c.e.Source) }
func (c *eventContext) Type() string    { return clean(c.e.Type) }
func (c *eventContext) Message() string { return clean(c.e.Message) }
func (c *eventContext) Seq() uint64     { return c.e.Seq }
