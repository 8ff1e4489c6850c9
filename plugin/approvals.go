package plugin

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

type approvalsOptions struct {
	name        string
	format      string
	noTrunc     bool
	interactive bool
}

func approvalsCmd(dockerCli command.Cli) *cobra.Command {
	var opts approvalsOptions
	cmd := &cobra.Command{
		Use:   "approvals [OPTIONS] NAME",
		Short: "List the requests of a bottle that wait for your decision, or decide them as they come (-i)",
		Args:  cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			return runApprovals(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().StringVar(&opts.format, "format", "table", formatUsage(".ID .Kind .Subject .Requester .Waiting .DeniedIn .Detail"))
	cmd.Flags().BoolVar(&opts.noTrunc, "no-trunc", false, "Do not truncate request IDs")
	cmd.Flags().BoolVarP(&opts.interactive, "interactive", "i", false, "Show each held request as it arrives and ask for the decision")
	return cmd
}

func runApprovals(ctx context.Context, dockerCli command.Cli, opts approvalsOptions) error {
	format := listFormat(opts.format, defaultApprovalTable)
	// A mistyped field fails before the supervisor is asked.
	if err := writeApprovals(io.Discard, format, opts.noTrunc, []api.Approval{{}}); err != nil {
		return err
	}
	sup, err := openSupervisor(ctx, dockerCli, opts.name)
	if err != nil {
		return err
	}
	if opts.interactive {
		return runAsk(ctx, dockerCli, sup)
	}
	as, err := sup.c.Approvals(ctx)
	if err != nil {
		return sup.wrap(err)
	}
	return writeApprovals(dockerCli.Out(), format, opts.noTrunc, as)
}

const defaultApprovalTable = "table {{.ID}}\t{{.Kind}}\t{{.Subject}}\t{{.Requester}}\t{{.Waiting}}\t{{.DeniedIn}}\t{{.Detail}}"

func writeApprovals(out io.Writer, format formatter.Format, noTrunc bool, as []api.Approval) error {
	now := time.Now()
	ctxs := make([]*approvalContext, len(as))
	for i, a := range as {
		ctxs[i] = &approvalContext{a: a, now: now, trunc: !noTrunc}
	}
	return writeList(out, format, newApprovalContext(), ctxs)
}

// approvalContext is a held request as --format templates see it; what
// the bottle sent is made safe for a terminal.
type approvalContext struct {
	formatter.HeaderContext
	a     api.Approval
	now   time.Time
	trunc bool
}

func newApprovalContext() *approvalContext {
	return &approvalContext{HeaderContext: formatter.HeaderContext{Header: formatter.SubHeaderContext{
		"ID": "ID", "Kind": "KIND", "Subject": "SUBJECT", "Requester": "REQUESTER", "Waiting": "WAITING",
		"DeniedIn": "DENIED IN", "Detail": "DETAIL",
	}}}
}

// MarshalJSON is the request as the supervisor's API has it.
func (c *approvalContext) MarshalJSON() ([]byte, error) { return json.Marshal(c.a) }

// ID is the request's ID, cut to shortID characters unless --no-trunc.
func (c *approvalContext) ID() string {
	if c.trunc && len(c.a.ID) > shortID {
		return c.a.ID[:shortID]
	}
	return c.a.ID
}

func (c *approvalContext) Kind() string      { return clean(string(c.a.Kind)) }
func (c *approvalContext) Subject() string   { return clean(c.a.Subject) }
func (c *approvalContext) Requester() string { return clean(c.a.Requester) }
func (c *approvalContext) Detail() string    { return clean(c.a.Detail) }

// Waiting is how long the request has waited.
func (c *approvalContext) Waiting() string { return units.HumanDuration(c.now.Sub(c.a.Since)) }

// DeniedIn is how long until the request is denied for want of a decision.
func (c *approvalContext) DeniedIn() string { return units.HumanDuration(c.a.Deadline.Sub(c.now)) }

// shortID is how much of a request ID tables show, as docker shows 12
// characters of an image or container ID; approve and deny take any unique
// prefix.
const shortID = 12
