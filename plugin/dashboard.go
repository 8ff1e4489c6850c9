package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/opts"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/dashboard"
	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
)

type dashboardOptions struct {
	interval time.Duration
	timeout  time.Duration
	// engineTLS is what a new bottle's plan records (see runOptions).
	engineTLS *plan.EngineTLS
}

func dashboardCmd(dockerCli command.Cli) *cobra.Command {
	var opts dashboardOptions
	cmd := &cobra.Command{
		Use:   "dashboard [OPTIONS]",
		Short: "Watch every bottle live and decide the requests they hold",
		Long: "Watch every bottle live, waiting ones first, and decide the requests they hold:\n" +
			"a allows once, A for the bottle's life, d denies. Enter shows a bottle's events and egress, v what\n" +
			"its agent pushed (git diff --stat); s, S and x stop, start and remove it (after you confirm), t\n" +
			"attaches to its agent. n starts a new bottle once you confirm its preflight (as run --preflight shows it).\n" +
			"The list shows each bottle's CPU and memory (its agent and bundle together; \"-\" on smolvm). q quits.",
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.engineTLS = engineTLS(cmd, dockerCli)
			return runDashboard(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().DurationVar(&opts.interval, "interval", time.Second, "Time between refreshes")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 2*time.Second, "How long a bottle's supervisor may take to answer before it is shown as not answering")
	return cmd
}

func runDashboard(ctx context.Context, dockerCli command.Cli, opts dashboardOptions) error {
	if !dockerCli.In().IsTerminal() || !dockerCli.Out().IsTerminal() {
		return errors.New("the dashboard needs a terminal: in scripts use `docker bottle ls` and `docker bottle approvals`")
	}
	if opts.interval <= 0 || opts.timeout <= 0 {
		return errors.New("--interval and --timeout must be more than 0")
	}
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return err
	}
	// Attach and diff run in this process, as `docker bottle attach` and
	// `docker bottle diff --stat` do, on the terminal the dashboard hands
	// over while they run.
	o := dashboard.Options{
		Interval: opts.interval,
		Poll:     dashboard.PollOptions{Timeout: opts.timeout, Parallel: 8},
		Attach: func(name string) tea.ExecCommand {
			return &inProcess{run: func() error {
				p, b, err := agentOf(dockerCli, name)
				if err != nil {
					return err
				}
				// Ctrl-C belongs to the agent; the attach ends when the
				// agent does or on Ctrl-P Ctrl-Q.
				ex, err := b.Attach(context.WithoutCancel(ctx), p, backend.AttachOptions{TTY: true,
					Streams: backend.Streams{Stdin: dockerCli.In(), Stdout: dockerCli.Out(), Stderr: dockerCli.Err()}})
				if err == nil && ex.Code != 0 {
					return agentExit(ex.Code)
				}
				return err
			}}
		},
		Diff: func(name string) tea.ExecCommand {
			return &inProcess{run: func() error {
				// The pager stays until the user leaves it, even when the
				// stat fits on the screen, unless the user says otherwise.
				return runDiff(ctx, dockerCli, diffOptions{name: name, gitArgs: []string{"--stat"},
					pagerEnv: map[string]string{"LESS": "RX"}})
			}}
		},
	}
	if dir, err := os.Getwd(); err == nil {
		o.Dir = dir
	}
	o.NewBottle = func(ctx context.Context, repo string) (dashboard.Preflight, error) {
		return checkNewBottle(ctx, dockerCli, repo, opts.engineTLS)
	}
	err = dashboard.Run(ctx, &dashboardSource{dockerCli: dockerCli, svc: svc},
		dockercli.InFile(dockerCli.In()), dockercli.OutFile(dockerCli.Out()), o)
	if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, context.Canceled) {
		return ErrInterrupted
	}
	return err
}

// checkNewBottle checks a bottle of repo as `docker bottle run --preflight -d
// repo` does and returns its preflight, and the start of the bottle, in
// this process, detached. Nothing of the run goes to the terminal, which
// the dashboard holds: its notes join the preflight, its progress is
// quiet.
func checkNewBottle(ctx context.Context, dockerCli command.Cli, repo string, tls *plan.EngineTLS) (dashboard.Preflight, error) {
	o := runOptions{workspace: repo, detach: true, progress: "quiet", env: opts.NewListOpts(opts.ValidateEnv), engineTLS: tls}
	svc, err := bottles.New(dockerCli, bottles.WithProgress(o.progress))
	if err != nil {
		return dashboard.Preflight{}, err
	}
	defer svc.Close()
	var text bytes.Buffer
	in, err := checkRun(ctx, dockerCli, svc, o, &text)
	if err == nil {
		err = showPreflight(ctx, &text, svc, in)
	}
	if err != nil {
		return dashboard.Preflight{}, err
	}
	lines := strings.Split(strings.TrimRight(text.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return dashboard.Preflight{Text: strings.Join(lines, "\n"), Start: func(ctx context.Context) (string, error) {
		svc, err := bottles.New(dockerCli, bottles.WithProgress(o.progress))
		if err != nil {
			return "", err
		}
		defer svc.Close()
		res, err := launch(ctx, svc, in, o, false, backend.Streams{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
		return res.Plan.Slug, err
	}}, nil
}

// DashboardSource is the dashboard's Source over the bottles of the
// docker CLI's state dir, for a program that polls as the dashboard does
// (bench/dashbench); close it when done.
func DashboardSource(dockerCli command.Cli) (dashboard.Source, func(), error) {
	svc, err := bottles.New(dockerCli)
	if err != nil {
		return nil, nil, err
	}
	return &dashboardSource{dockerCli: dockerCli, svc: svc}, svc.Close, nil
}

// dashboardSource reads the bottles for the dashboard through the bottles
// service and each bottle's supervisor, as ls and approvals do. Text from a
// bottle is cleaned here, before the dashboard shows it.
type dashboardSource struct {
	dockerCli command.Cli
	svc       *bottles.Service
	// samples are the bottles' last two usage samples, which tell their
	// CPU; Inspect runs for many bottles at once.
	mu      sync.Mutex
	samples map[string]*samples
	// twoSamples: the engine takes the two samples the CPU needs, a
	// second apart, for a source read once (ls).
	twoSamples bool
}

func (s *dashboardSource) List(context.Context) ([]string, error) {
	ps, err := s.svc.List()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Slug
	}
	s.mu.Lock()
	for name := range s.samples {
		if !slices.Contains(names, name) {
			delete(s.samples, name)
		}
	}
	s.mu.Unlock()
	return names, nil
}

func (s *dashboardSource) Inspect(ctx context.Context, name string) (dashboard.Facts, error) {
	p, err := s.svc.Load(name)
	if err != nil {
		return dashboard.Facts{}, err
	}
	st := s.svc.Status(ctx, p)
	bs, err := bringup.Inspect(ctx, s.dockerCli.Client(), p)
	if err != nil {
		return dashboard.Facts{}, err
	}
	f := dashboard.Facts{Name: p.Slug, Repo: clean(p.Workspace), Branch: clean(p.GitGate.Branch), Backend: clean(p.Backend),
		Created: p.Created, AgentCreated: p.AgentCreated, Agent: clean(st.Agent), ExitCode: -1, Serving: bs.Serving}
	if bs.Failed() {
		f.Failed = bs.Reason()
	}
	if p.AgentCreated {
		f.ExitCode, f.LastLine = s.agent(ctx, p)
	}
	if s.twoSamples {
		if now, prev, ok := bottleSample(ctx, s.dockerCli.Client(), p, true); ok {
			f.Usage = dashboard.UsageBetween(prev, now)
		}
	} else {
		f.Usage = s.usage(ctx, p)
	}
	return f, nil
}

// samples are a bottle's last two usage samples, and whether one is being
// read.
type samples struct {
	prev, last dashboard.Sample
	reading    bool
	started    time.Time
}

// sampleTimeout bounds reading a bottle's usage: the engine may take a
// second per container. sampleEvery is how often it is read: the engine's
// stats cost it more than the rest of a refresh (docs/benchmarks.md,
// "Dashboard"), and CPU over a few seconds says as much.
const (
	sampleTimeout = 5 * time.Second
	sampleEvery   = 5 * time.Second
)

// usage is a bottle's usage from its last two samples, and starts reading
// the next in the background when it is time and none is under way: the
// engine answers a one-shot stats call only at its next collection (up to
// a second on engine 20.10), which must hold up neither the poll nor the
// screen.
func (s *dashboardSource) usage(ctx context.Context, p plan.Plan) dashboard.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == nil {
		s.samples = map[string]*samples{}
	}
	u := s.samples[p.Slug]
	if u == nil {
		u = &samples{}
		s.samples[p.Slug] = u
	}
	if !u.reading && time.Since(u.started) >= sampleEvery {
		u.reading, u.started = true, time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sampleTimeout)
			now, _, ok := bottleSample(ctx, s.dockerCli.Client(), p, false)
			cancel()
			s.mu.Lock()
			defer s.mu.Unlock()
			u.reading = false
			if ok {
				u.prev, u.last = u.last, now
			}
		}()
	}
	if u.last.At.IsZero() {
		return dashboard.Usage{}
	}
	return dashboard.UsageBetween(u.prev, u.last)
}

// lastOutput is how much of the end of an agent's output is kept for its
// last line: the agent may print a line of any length.
const lastOutput = 16 << 10

// agent reads, through the bottle's backend, the exit code (-1 while it
// runs or when unknown) and the last line of output of its agent; what
// cannot be read stays unknown.
func (s *dashboardSource) agent(ctx context.Context, p plan.Plan) (code int, line string) {
	code = -1
	b, err := s.svc.Backend(p)
	if err != nil {
		return code, ""
	}
	if er, ok := b.(backend.ExitReporter); ok {
		if c, ok := er.ExitCode(ctx, p); ok {
			code = c
		}
	}
	out := &tailBuffer{max: lastOutput}
	if _, err := b.Logs(ctx, p, backend.LogsOptions{Tail: "5", Stdout: out, Stderr: out}); err != nil {
		return code, ""
	}
	return code, lastLine(string(out.b))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// lastLine is the last line of terminal output with text in it, without
// its escape sequences, cleaned.
func lastLine(s string) string {
	lines := strings.FieldsFunc(ansi.Strip(s), func(r rune) bool { return r == '\n' || r == '\r' })
	for _, l := range slices.Backward(lines) {
		if l = strings.TrimSpace(l); l != "" {
			return clean(l)
		}
	}
	return ""
}

func (s *dashboardSource) Supervisor(ctx context.Context, name string) (dashboard.Supervisor, error) {
	p, err := s.svc.Load(name)
	if err != nil {
		return nil, err
	}
	sup, err := supervisorOf(ctx, s.dockerCli, p)
	if err != nil {
		return nil, err
	}
	return dashboardSupervisor{sup}, nil
}

func (s *dashboardSource) Decide(ctx context.Context, name, id string, d approval.Decision) (string, error) {
	p, err := s.svc.Load(name)
	if err != nil {
		return "", err
	}
	sup, err := supervisorOf(ctx, s.dockerCli, p)
	if err != nil {
		return "", err
	}
	return decideHeld(ctx, sup, id, d)
}

func (s *dashboardSource) Stop(ctx context.Context, name string) error { return s.svc.Stop(ctx, name) }

func (s *dashboardSource) Start(ctx context.Context, name string) error {
	_, err := s.svc.Start(ctx, name)
	return err
}

func (s *dashboardSource) Remove(ctx context.Context, name string) error {
	return s.svc.Remove(ctx, name, false)
}

// dashboardSupervisor is a bottle's supervisor as the dashboard reads it.
type dashboardSupervisor struct{ sup *supervised }

func (d dashboardSupervisor) Held(ctx context.Context) ([]dashboard.Held, error) {
	as, err := d.sup.c.Approvals(ctx)
	if err != nil {
		return nil, d.sup.wrap(err)
	}
	hs := make([]dashboard.Held, len(as))
	for i, a := range as {
		hs[i] = dashboard.Held{ID: a.ID, Kind: approval.Kind(clean(string(a.Kind))), Subject: clean(a.Subject),
			Detail: clean(a.Detail), Requester: clean(a.Requester), Since: a.Since, Deadline: a.Deadline}
	}
	return hs, nil
}

func (d dashboardSupervisor) Events(ctx context.Context, after uint64) ([]dashboard.Line, error) {
	evs, err := d.sup.c.Events(ctx, after)
	if err != nil {
		return nil, d.sup.wrap(err)
	}
	ls := make([]dashboard.Line, len(evs))
	for i, e := range evs {
		ls[i] = dashboard.Line{Seq: e.Seq, Time: e.Time, Source: clean(e.Source), Type: clean(e.Type), Text: clean(e.Message)}
	}
	return ls, nil
}

func (d dashboardSupervisor) Audit(ctx context.Context, after uint64) ([]dashboard.Line, error) {
	es, err := d.sup.c.Audit(ctx, after)
	if err != nil {
		return nil, d.sup.wrap(err)
	}
	ls := make([]dashboard.Line, len(es))
	for i, e := range es {
		ls[i] = auditLine(e)
	}
	return ls, nil
}

// auditLine is an audit entry as a feed line, said as `docker bottle
// audit` says it.
func auditLine(e api.AuditEntry) dashboard.Line {
	l := dashboard.Line{Seq: e.Seq, Source: clean(e.Source)}
	var rec map[string]any
	if err := json.Unmarshal(e.Record, &rec); err != nil {
		l.Text = clean(string(e.Record))
		return l
	}
	if t, err := time.Parse(time.RFC3339Nano, str(rec["time"])); err == nil {
		l.Time = t
	}
	l.Type, l.Text = clean(str(rec["decision"])), clean(auditSummary(rec))
	return l
}

func (d dashboardSupervisor) Health(ctx context.Context) (string, error) {
	h, err := d.sup.c.Health(ctx)
	if err != nil {
		return "", d.sup.wrap(err)
	}
	var bad []string
	for name, dh := range h.Daemons {
		if !dh.OK {
			bad = append(bad, fmt.Sprintf("%s: %s", clean(name), clean(dh.Error)))
		}
	}
	slices.Sort(bad)
	if len(bad) == 0 && !h.OK {
		return "the bundle says it is not healthy", nil
	}
	return strings.Join(bad, "; "), nil
}

// inProcess is a command of this plugin that the dashboard runs while it
// hands the terminal over: it uses the docker CLI's own streams, which are
// that terminal. The dashboard shows the error it ends with.
type inProcess struct {
	run func() error
}

func (c *inProcess) Run() error { return c.run() }

func (c *inProcess) SetStdin(io.Reader)  {}
func (c *inProcess) SetStdout(io.Writer) {}
func (c *inProcess) SetStderr(io.Writer) {}

// agentExit is the exit code of an agent that ended while attached.
type agentExit int

func (e agentExit) Error() string { return fmt.Sprintf("the agent exited with code %d", int(e)) }

// ExitCode is what the dashboard reads to say how the attach ended.
func (e agentExit) ExitCode() int { return int(e) }
