package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
)

type lsOptions struct {
	all    bool
	quiet  bool
	format string
}

// bottleRow is one line of `docker bottle ls`; its fields are what
// --format templates and JSON show.
type bottleRow struct {
	Name        string    `json:"name"`
	Backend     string    `json:"backend"`
	NetworkMode string    `json:"network_mode"`
	State       string    `json:"state"`
	Bundle      string    `json:"bundle"`
	Agent       string    `json:"agent"`
	Provider    string    `json:"provider"`
	Branch      string    `json:"branch"`
	Created     time.Time `json:"created"`
	Workspace   string    `json:"workspace"`
	// Waiting is how many requests the bottle holds for a decision; -1
	// when its supervisor did not answer (or the bundle does not run).
	Waiting int `json:"waiting"`
	// Reason says why the bundle is down or failed, or that it was
	// restarted, with the exit code and whether it ran out of memory.
	Reason string `json:"reason,omitempty"`
	short  string
}

// States a bottle is in when its bundle's process died: "bundle down"
// while the engine restarts it, "failed" once it will not.
const (
	StateBundleDown = "bundle down"
	StateFailed     = "failed"
)

func lsCmd(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list", "ps"},
		Short:   "List bottles",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLs(cmd, dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.all, "all", "a", false, "Show all bottles (default shows running ones)")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display bottle names")
	f.StringVar(&opts.format, "format", "table", `Output format: "table", "json", or a Go template such as '{{.Name}} {{.State}}'`)
	return cmd
}

func runLs(cmd *cobra.Command, dockerCli command.Cli, o lsOptions) error {
	svc, err := newService(dockerCli, nil)
	if err != nil {
		return err
	}
	ps, err := svc.List()
	if err != nil {
		return err
	}
	var rows []bottleRow
	for _, p := range ps {
		st := svc.Status(cmd.Context(), p)
		if !o.all && !st.Running() {
			continue
		}
		state := st.State
		bs, err := bringup.Inspect(cmd.Context(), dockerCli.Client(), p)
		if err != nil {
			return err
		}
		switch {
		case bs.Failed():
			state = StateFailed
		case bs.Status == "restarting":
			state = StateBundleDown
		}
		waiting := -1
		if bs.Serving {
			waiting = heldRequests(cmd.Context(), dockerCli.Client(), p)
		}
		rows = append(rows, bottleRow{Name: p.Slug, Backend: p.Backend, NetworkMode: p.NetworkMode, State: state,
			Bundle: st.Bundle, Agent: st.Agent, Provider: p.Agent.Provider, Branch: p.GitGate.Branch, Created: p.Created,
			Workspace: p.Workspace, Waiting: waiting, Reason: bs.Reason(), short: bs.Short()})
	}
	out := dockerCli.Out()
	if o.format != "json" {
		// The plan lives in the stage dir, which the bundle can write.
		for i := range rows {
			rows[i] = rows[i].cleaned()
		}
	}
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Fprintln(out, r.Name)
		}
	case o.format == "json":
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	case o.format == "table" || o.format == "":
		w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
		fmt.Fprintln(w, "NAME\tBACKEND\tNETWORK\tSTATE\tWAITING\tCREATED\tAGENT\tBRANCH")
		for _, r := range rows {
			waiting := "-"
			if r.Waiting >= 0 {
				waiting = fmt.Sprint(r.Waiting)
			}
			state := r.State
			if r.short != "" {
				state += " (" + r.short + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", r.Name, r.Backend, r.NetworkMode, state, waiting,
				units.HumanDuration(time.Since(r.Created)), r.Provider, r.Branch)
		}
		return w.Flush()
	default:
		tmpl, err := template.New("ls").Parse(strings.TrimPrefix(o.format, "table "))
		if err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		for _, r := range rows {
			if err := tmpl.Execute(out, r); err != nil {
				return err
			}
			fmt.Fprintln(out)
		}
	}
	return nil
}

// cleaned is r with its text made safe for a terminal.
func (r bottleRow) cleaned() bottleRow {
	for _, f := range []*string{&r.Name, &r.Backend, &r.NetworkMode, &r.State, &r.Bundle, &r.Agent, &r.Provider, &r.Branch, &r.Workspace, &r.Reason, &r.short} {
		*f = clean(*f)
	}
	return r
}

// heldRequests asks a bottle's supervisor how many requests wait for a
// decision, briefly: ls must not hang on a bundle that does not answer.
func heldRequests(ctx context.Context, eng bringup.Inspector, p plan.Plan) int {
	sup, err := supervisorOf(ctx, eng, p)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	as, err := sup.c.Approvals(ctx)
	if err != nil {
		return -1
	}
	return len(as)
}

// completeBottles completes bottle names.
func completeBottles(dockerCli command.Cli) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		svc, err := newService(dockerCli, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		ps, _ := svc.List()
		var names []string
		for _, p := range ps {
			if strings.HasPrefix(p.Slug, toComplete) {
				names = append(names, p.Slug)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
