package plugin

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	cliopts "github.com/docker/cli/opts"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/dashboard"
	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/plan"
)

type lsOptions struct {
	all    bool
	quiet  bool
	format string
	filter cliopts.FilterOpt
}

// bottleRow is one bottle as `docker bottle ls` knows it; --format
// templates see it through bottleContext, JSON shows these fields.
type bottleRow struct {
	Name        string
	Backend     string
	NetworkMode string
	State       string
	// Status is State with what the engine says of the bundle, as `docker
	// ps` shows a status next to a container's state.
	Status    string
	Bundle    string
	Agent     string
	Provider  string
	Branch    string
	Created   time.Time
	Workspace string
	// Waiting is how many requests the bottle holds for a decision; -1
	// when its supervisor did not answer (or the bundle does not run).
	Waiting int
	// Reason says why the bundle is down or failed, or that it was
	// restarted, with the exit code and whether it ran out of memory.
	Reason string `json:",omitempty"`
	// Ports are the agent's published ports, as `docker bottle port`
	// prints them.
	Ports []string `json:",omitempty"`
	// RunningFor is how long ago the bottle was made, as docker ps says
	// it; set when the row is written.
	RunningFor string
	// Repository is the repository the agent works on (its workspace).
	Repository string

	// What the dashboard shows, read only when the format shows it: the
	// bottle's activity (starting, working, waiting for you, idle, exited
	// (CODE), failed), its agent's exit code once exited, the CPU (in
	// percent of one core) and memory of its agent and bundle together
	// ("-" when not known: smolvm), the agent's last line of output.
	Activity   string `json:",omitempty"`
	ExitCode   *int   `json:",omitempty"`
	CPUPerc    string `json:",omitempty"`
	MemUsage   string `json:",omitempty"`
	LastOutput string `json:",omitempty"`
}

// States a bottle is in when its bundle's process died: "bundle down"
// while the engine restarts it, "failed" once it will not.
const (
	StateBundleDown = "bundle down"
	StateFailed     = "failed"
)

func lsCmd(dockerCli command.Cli) *cobra.Command {
	opts := lsOptions{filter: cliopts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list", "ps"},
		Short:   "List bottles",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLs(cmd.Context(), dockerCli, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.all, "all", "a", false, "Show all bottles (default shows running ones)")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "Only display bottle names")
	f.VarP(&opts.filter, "filter", "f", "Filter output based on conditions provided (repo=PATH, name=TEXT)")
	f.StringVar(&opts.format, "format", "table", formatUsage(".Name .Backend .NetworkMode .State .Status .Waiting .RunningFor .CreatedAt .Agent .Provider .Branch .Bundle .Workspace .Repository .Reason .Ports .Activity .ExitCode .CPUPerc .MemUsage .LastOutput"))
	return cmd
}

func runLs(ctx context.Context, dockerCli command.Cli, o lsOptions) error {
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return err
	}
	ps, err := svc.List()
	if err != nil {
		return err
	}
	match, err := bottleFilter(ctx, o.filter.Value())
	if err != nil {
		return err
	}
	// The state dir holds the bottles of every engine this client used; on
	// a remote engine, ls shows those whose containers that engine has.
	remote := hostcheck.IsRemote(dockerCli.DockerEndpoint().Host)
	var rows []bottleRow
	for _, p := range ps {
		if !match(p) {
			continue
		}
		st := svc.Status(ctx, p)
		if remote && st.Bundle == bottles.StateMissing && st.Agent == bottles.StateMissing {
			continue
		}
		if !o.all && !st.Running() {
			continue
		}
		bs, err := bringup.Inspect(ctx, dockerCli.Client(), p)
		if err != nil {
			return err
		}
		r := bottleRow{Name: p.Slug, Backend: p.Backend, NetworkMode: p.NetworkMode, State: st.State,
			Bundle: st.Bundle, Agent: st.Agent, Provider: p.Agent.Provider, Branch: p.GitGate.Branch, Created: p.Created,
			Workspace: p.Workspace, Repository: p.Workspace, Waiting: -1, Reason: bs.Reason()}
		switch {
		case bs.Failed():
			r.State = StateFailed
		case bs.Status == "restarting":
			r.State = StateBundleDown
		}
		r.Status = r.State
		if short := bs.Short(); short != "" {
			r.Status += " (" + short + ")"
		}
		if bs.Serving {
			r.Waiting = heldRequests(ctx, dockerCli, p)
			if ps, err := publishedPorts(ctx, dockerCli, svc, p); err == nil {
				for _, pub := range ps {
					r.Ports = append(r.Ports, pub.String())
				}
			}
		}
		rows = append(rows, r)
	}
	if !o.quiet && showsActivity(o.format) {
		addActivity(ctx, &dashboardSource{dockerCli: dockerCli, svc: svc, twoSamples: true}, rows)
	}
	return writeBottles(dockerCli.Out(), o, rows)
}

// showsActivity says whether a --format shows what the dashboard reads of
// a bottle, which takes ls a second or two: json (and a template's json)
// shows it all.
func showsActivity(format string) bool {
	for _, f := range []string{"json", ".Activity", ".ExitCode", ".CPUPerc", ".MemUsage", ".LastOutput"} {
		if strings.Contains(format, f) {
			return true
		}
	}
	return false
}

// lsActivityTimeout is how long ls waits for one bottle's activity: its
// usage takes the engine a second or two; lsActivityParallel is how many
// bottles it reads at once, mostly waiting for those seconds.
const (
	lsActivityTimeout  = 5 * time.Second
	lsActivityParallel = 32
)

// addActivity fills in the rows what the dashboard shows of their
// bottles, read as one poll of the dashboard reads it.
func addActivity(ctx context.Context, src dashboard.Source, rows []bottleRow) {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	st := dashboard.NewState()
	st.Apply(dashboard.Poll(ctx, listed{Source: src, names: names}, dashboard.Request{},
		dashboard.PollOptions{Timeout: lsActivityTimeout, Parallel: lsActivityParallel}))
	for i := range rows {
		b, ok := st.Bottle(rows[i].Name)
		if !ok {
			continue
		}
		r := &rows[i]
		r.Activity, r.LastOutput = b.State(), b.LastLine
		r.CPUPerc, r.MemUsage = b.Usage.CPUText(), b.Usage.MemoryText()
		if b.Kind == dashboard.Exited && b.ExitCode >= 0 {
			r.ExitCode = &b.ExitCode
		}
	}
}

// listed is a Source that lists the given bottles only.
type listed struct {
	dashboard.Source
	names []string
}

func (l listed) List(context.Context) ([]string, error) { return l.names, nil }

const defaultBottleTable = "table {{.Name}}\t{{.Backend}}\t{{.NetworkMode}}\t{{.Status}}\t{{.Waiting}}\t{{.RunningFor}}\t{{.Provider}}\t{{.Branch}}"

// writeBottles prints the rows of ls as --format and -q ask.
func writeBottles(out io.Writer, o lsOptions, rows []bottleRow) error {
	format := listFormat(o.format, defaultBottleTable)
	if o.quiet {
		format = "{{.Name}}"
	}
	ctxs := make([]*bottleContext, len(rows))
	for i, r := range rows {
		ctxs[i] = &bottleContext{r: r}
	}
	return writeList(out, format, newBottleContext(), ctxs)
}

// bottleContext is a bottle as --format templates see it. The plan lives
// in the stage dir, which the bundle can write, so what a template shows
// is made safe for a terminal; JSON escapes by itself.
type bottleContext struct {
	formatter.HeaderContext
	r bottleRow
}

func newBottleContext() *bottleContext {
	return &bottleContext{HeaderContext: formatter.HeaderContext{Header: formatter.SubHeaderContext{
		"Name": formatter.NameHeader, "Backend": "BACKEND", "NetworkMode": "NETWORK", "State": formatter.StateHeader,
		"Status": formatter.StatusHeader, "Waiting": "WAITING", "RunningFor": "CREATED", "CreatedAt": formatter.CreatedAtHeader,
		"Agent": "AGENT", "Provider": "PROVIDER", "Branch": "BRANCH", "Bundle": "BUNDLE", "Workspace": "WORKSPACE",
		"Reason": "REASON", "Ports": formatter.PortsHeader, "Repository": "REPOSITORY", "Activity": "ACTIVITY",
		"ExitCode": "EXIT CODE", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE", "LastOutput": "LAST OUTPUT",
	}}}
}

// MarshalJSON is the row whole, typed (Waiting a number, Created a time).
func (c *bottleContext) MarshalJSON() ([]byte, error) {
	r := c.r
	r.RunningFor = c.RunningFor()
	return json.Marshal(r)
}

func (c *bottleContext) Name() string        { return clean(c.r.Name) }
func (c *bottleContext) Backend() string     { return clean(c.r.Backend) }
func (c *bottleContext) NetworkMode() string { return clean(c.r.NetworkMode) }
func (c *bottleContext) State() string       { return clean(c.r.State) }
func (c *bottleContext) Status() string      { return clean(c.r.Status) }
func (c *bottleContext) Bundle() string      { return clean(c.r.Bundle) }
func (c *bottleContext) Agent() string       { return clean(c.r.Agent) }
func (c *bottleContext) Provider() string    { return clean(c.r.Provider) }
func (c *bottleContext) Branch() string      { return clean(c.r.Branch) }
func (c *bottleContext) Workspace() string   { return clean(c.r.Workspace) }
func (c *bottleContext) Reason() string      { return clean(c.r.Reason) }
func (c *bottleContext) Ports() string       { return clean(strings.Join(c.r.Ports, ", ")) }
func (c *bottleContext) Repository() string  { return clean(c.r.Repository) }
func (c *bottleContext) Activity() string    { return clean(c.r.Activity) }
func (c *bottleContext) CPUPerc() string     { return clean(c.r.CPUPerc) }
func (c *bottleContext) MemUsage() string    { return clean(c.r.MemUsage) }
func (c *bottleContext) LastOutput() string  { return clean(c.r.LastOutput) }

// ExitCode is the agent's exit code once it exited, "" before.
func (c *bottleContext) ExitCode() string {
	if c.r.ExitCode == nil {
		return ""
	}
	return strconv.Itoa(*c.r.ExitCode)
}

// Waiting is the number of held requests, or "-" when the supervisor did
// not answer.
func (c *bottleContext) Waiting() string {
	if c.r.Waiting < 0 {
		return "-"
	}
	return strconv.Itoa(c.r.Waiting)
}

// RunningFor is how long ago the bottle was made, as `docker ps` shows it.
func (c *bottleContext) RunningFor() string {
	return units.HumanDuration(time.Since(c.r.Created)) + " ago"
}

// CreatedAt is when the bottle was made, as `docker ps` shows it.
func (c *bottleContext) CreatedAt() string {
	return c.r.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
}

// heldRequests asks a bottle's supervisor how many requests wait for a
// decision, briefly: ls must not hang on a bundle that does not answer.
func heldRequests(ctx context.Context, dockerCli command.Cli, p plan.Plan) int {
	sup, err := supervisorOf(ctx, dockerCli, p)
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
