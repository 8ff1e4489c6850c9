package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
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

// supervised is a bottle's supervisor, reached from the host with the
// operator's token.
type supervised struct {
	name string
	plan plan.Plan
	c    *client.Client
}

// openSupervisor loads the bottle's plan, checks that its bundle runs and
// publishes the supervisor where the plan says, reads its operator token
// from its file and returns a client for the supervisor's published port.
func openSupervisor(ctx context.Context, dockerCli command.Cli, name string) (*supervised, error) {
	p, err := loadPlan(name)
	if err != nil {
		return nil, err
	}
	return supervisorOf(ctx, dockerCli.Client(), p)
}

// loadPlan loads a bottle's plan from its stage dir, without the engine.
func loadPlan(name string) (plan.Plan, error) {
	if err := spec.ValidateName(name); err != nil {
		return plan.Plan{}, err
	}
	dirs, err := plan.DefaultDirs()
	if err != nil {
		return plan.Plan{}, err
	}
	p, err := plan.Load(dirs.Stage(name))
	if errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("no bottle named %q: check the name, or start one with `docker bottle run --name %s`", name, name)
	}
	if err != nil {
		return p, fmt.Errorf("bottle %q: %w", name, err)
	}
	return p, nil
}

// supervisorOf is openSupervisor for a plan already loaded. The operator's
// token is sent only to the port the bottle's own bundle container
// publishes now: after the bundle died, any local process could listen on
// the port the plan recorded.
func supervisorOf(ctx context.Context, eng bringup.Inspector, p plan.Plan) (*supervised, error) {
	name := p.Slug
	if p.Endpoints == nil || p.Endpoints.HostSupervise == "" {
		return nil, fmt.Errorf("the bundle of bottle %q is not up, so there is no supervisor to ask: "+
			"run the bottle with `docker bottle run`, or remove it with `docker bottle rm %s`", name, name)
	}
	st, err := bringup.Inspect(ctx, eng, p)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Status != "missing" && !st.Ours:
		return nil, fmt.Errorf("the container %s is not the bundle of bottle %q, so its supervisor was not asked: remove the bottle with `docker bottle rm %s`",
			p.Bundle.Container, name, name)
	case !st.Serving:
		reason := st.Reason()
		return nil, fmt.Errorf("the bundle of bottle %q is not running (%s), so its supervisor was not asked: "+
			"start it with `docker bottle start %s`, or remove the bottle with `docker bottle rm %s`", name, reason, name, name)
	}
	if _, port, _ := net.SplitHostPort(p.Endpoints.HostSupervise); port != strconv.Itoa(int(st.Ports.Supervise)) {
		return nil, fmt.Errorf("the bundle of bottle %q publishes its supervisor on port %d, not on %s as its plan says, so it was not asked: "+
			"`docker bottle stop %s` and `docker bottle start %s` record the bundle's ports again", name, st.Ports.Supervise, p.Endpoints.HostSupervise, name, name)
	}
	tok, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the operator token of bottle %q: %w (the stage dir may be damaged: remove the bottle and run it again)", name, err)
	}
	c, err := client.New(p.Endpoints.HostSupervise, strings.TrimSpace(string(tok)))
	if err != nil {
		return nil, fmt.Errorf("bottle %q: %w", name, err)
	}
	return &supervised{name: name, plan: p, c: c}, nil
}

// wrap says what a failed supervisor call means for the user.
func (s *supervised) wrap(err error) error {
	var netErr net.Error
	switch client.StatusCode(err) {
	case 0:
		if errors.As(err, &netErr) {
			return fmt.Errorf("cannot reach the supervisor of bottle %q: %w; is its bundle running? (`docker ps -a --filter name=%s`)",
				s.name, netErr, s.plan.Bundle.Container)
		}
	case 401, 403:
		return fmt.Errorf("the supervisor at %s refused bottle %q's operator token: %w; "+
			"the port may now belong to another bundle: run the bottle again", s.plan.Endpoints.HostSupervise, s.name, err)
	}
	return fmt.Errorf("bottle %q: %w", s.name, err)
}

// followEnd is how a followed stream ends: its context cancelled ends it
// without an error (adaptInterrupt makes a Ctrl-C exit 130, as `docker
// events` does).
func followEnd(ctx context.Context, s *supervised, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return s.wrap(err)
}

// writeRow prints a row of fixed-width columns (the last one free), the
// same whether listed at once or followed line by line.
func writeRow(w io.Writer, widths []int, cols ...string) error {
	var b strings.Builder
	for i, c := range cols {
		if i < len(widths) {
			fmt.Fprintf(&b, "%-*s ", widths[i], c)
		} else {
			b.WriteString(c)
		}
	}
	_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	return err
}

// localTime formats an event's time for a table.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
