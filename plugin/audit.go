package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

type auditOptions struct {
	name   string
	follow bool
	format string
}

func auditCmd(dockerCli command.Cli) *cobra.Command {
	var opts auditOptions
	cmd := &cobra.Command{
		Use:   "audit [OPTIONS] NAME",
		Short: "Show a bottle's audit trail: every egress, push and approval decision",
		Args:  cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name = args[0]
			return runAudit(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.follow, "follow", "f", false, "Follow new audit lines until interrupted")
	cmd.Flags().StringVar(&opts.format, "format", "table", formatUsage(".Time .Source .Decision .What .Seq"))
	return cmd
}

var auditWidths = []int{25, 10, 12}

func runAudit(ctx context.Context, dockerCli command.Cli, opts auditOptions) error {
	audit := stream[api.AuditEntry]{
		header: []string{"TIME", "SOURCE", "DECISION", "WHAT"}, widths: auditWidths,
		row: func(e api.AuditEntry) []string {
			c := auditContextOf(e)
			return []string{c.Time(), c.Source(), c.Decision(), c.What()}
		},
		context: func(e api.AuditEntry) formatter.SubContext { return auditContextOf(e) },
		fields:  newAuditContext(),
	}
	if err := audit.check(opts.format); err != nil {
		return err
	}
	sup, err := openSupervisor(ctx, dockerCli, opts.name)
	if err != nil {
		return err
	}
	audit.list, audit.follow = sup.c.Audit, sup.c.FollowAudit
	audit.seq = func(e api.AuditEntry) uint64 { return e.Seq }
	return audit.show(ctx, dockerCli, sup, opts.follow, opts.format)
}

// auditContext is an audit line as --format templates see it; what the
// bottle's daemons wrote is made safe for a terminal.
type auditContext struct {
	formatter.HeaderContext
	e   api.AuditEntry
	rec map[string]any // nil when the record is not a JSON object
}

func newAuditContext() *auditContext {
	return &auditContext{HeaderContext: formatter.HeaderContext{Header: formatter.SubHeaderContext{
		"Time": "TIME", "Source": "SOURCE", "Decision": "DECISION", "What": "WHAT", "Seq": "SEQ",
	}}}
}

func auditContextOf(e api.AuditEntry) *auditContext {
	c := &auditContext{e: e}
	if json.Unmarshal(e.Record, &c.rec) != nil {
		c.rec = nil
	}
	return c
}

// MarshalJSON is the line as the supervisor's API has it.
func (c *auditContext) MarshalJSON() ([]byte, error) { return json.Marshal(c.e) }

func (c *auditContext) Source() string { return clean(c.e.Source) }
func (c *auditContext) Seq() uint64    { return c.e.Seq }

// Time is when the daemon wrote the line, or "-".
func (c *auditContext) Time() string {
	s, ok := c.rec["time"].(string)
	if !ok {
		return "-"
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return localTime(t)
	}
	return clean(s)
}

// Decision is what the daemon decided, or "-" for a line that is not JSON.
func (c *auditContext) Decision() string {
	if c.rec == nil {
		return "-"
	}
	return clean(str(c.rec["decision"]))
}

// What says in one line what the record is about; the record itself when
// it is not JSON.
func (c *auditContext) What() string {
	if c.rec == nil {
		return clean(string(c.e.Record))
	}
	return clean(auditSummary(c.rec))
}

// auditSummary says in one line what an audit record is about, from the
// fields the daemons write: the proxy's method, host, port and path, the
// gate's refs, the supervisor's kind and subject, and who decided and why.
func auditSummary(rec map[string]any) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	add(str(rec["event"]))
	add(str(rec["method"]))
	if host := str(rec["host"]); host != "" {
		if port := str(rec["port"]); port != "" {
			host += ":" + port
		}
		add(host + str(rec["path"]))
	}
	if refs, ok := rec["refs"].([]any); ok {
		for _, r := range refs {
			if m, ok := r.(map[string]any); ok {
				add(str(m["ref"]))
			}
		}
	}
	if target := str(rec["target"]); target != "" {
		// The relay's inbound connections: from the host to the agent.
		add(str(rec["client"]) + " -> " + target)
	}
	add(str(rec["kind"]))
	add(str(rec["subject"]))
	if by := str(rec["by"]); by != "" {
		add("by " + by)
	}
	if reason := str(rec["reason"]); reason != "" {
		add("(" + reason + ")")
	}
	return strings.Join(parts, " ")
}

// str renders a decoded JSON scalar; other values give "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	return ""
}
