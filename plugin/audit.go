package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
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
	cmd.Flags().StringVar(&opts.format, "format", "table", `Output format: "table" or "json" (one object per line)`)
	return cmd
}

var auditWidths = []int{25, 10, 12}

func runAudit(ctx context.Context, dockerCli command.Cli, opts auditOptions) error {
	if err := checkFormat(opts.format); err != nil {
		return err
	}
	sup, err := openSupervisor(ctx, dockerCli, opts.name)
	if err != nil {
		return err
	}
	return stream[api.AuditEntry]{
		list: sup.c.Audit, follow: sup.c.FollowAudit, seq: func(e api.AuditEntry) uint64 { return e.Seq },
		header: []string{"TIME", "SOURCE", "DECISION", "WHAT"}, widths: auditWidths, print: printAudit,
	}.show(ctx, dockerCli, sup, opts.follow, opts.format)
}

func printAudit(out io.Writer, format string) func(api.AuditEntry) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		return func(e api.AuditEntry) error { return enc.Encode(e) }
	}
	return func(e api.AuditEntry) error {
		var rec map[string]any
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			return writeRow(out, auditWidths, "-", clean(e.Source), "-", clean(string(e.Record)))
		}
		when := "-"
		if s, ok := rec["time"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				when = localTime(t)
			} else {
				when = s
			}
		}
		return writeRow(out, auditWidths, clean(when), clean(e.Source), clean(str(rec["decision"])), clean(auditSummary(rec)))
	}
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
