// Command dashbench measures what `docker bottle dashboard` costs with
// many running bottles (docs/benchmarks.md, "Dashboard"): the CPU time of
// one refresh of the dashboard (a poll of every bottle, through the same
// Source and model the dashboard runs, and the screen drawn), and the
// load the refreshes put on the bottles: requests per second to their
// supervisors, and the CPU of their bundles and of the engine, against a
// baseline of the same bottles idle with no dashboard, measured in the
// same run. Run it through bench/dashboard.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/dashboard"
	"github.com/docker-bottle/docker-bottle/plugin"
)

const base = "docker-bottle-test/bookworm-base:1"

func main() {
	n := flag.Int("bottles", 20, "running bottles")
	window := flag.Duration("window", 30*time.Second, "how long each phase is measured")
	interval := flag.Duration("interval", time.Second, "time between refreshes, as the dashboard's --interval")
	pluginBin := flag.String("plugin", "bin/docker-bottle", "the plugin binary")
	flag.Parse()
	if err := run(*n, *window, *interval, *pluginBin); err != nil {
		fmt.Fprintln(os.Stderr, "dashbench:", err)
		os.Exit(1)
	}
}

func run(n int, window, interval time.Duration, pluginBin string) error {
	work, err := os.MkdirTemp("", "dashbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg := filepath.Join(work, "docker-config")
	if err := os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(pluginBin)
	if err != nil {
		return fmt.Errorf("the plugin (make build): %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "cli-plugins", "docker-bottle"), data, 0o755); err != nil {
		return err
	}
	// This process reads the same state dir as the plugin it runs.
	for k, v := range map[string]string{"DOCKER_CONFIG": cfg, "DOCKER_BOTTLE_CACHE": filepath.Join(work, "cache"), "DOCKER_BOTTLE_SMOLVM": ""} {
		os.Setenv(k, v)
	}
	repo := filepath.Join(work, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	spec := "agent:\n  provider: shell\n  image: " + base + "\n  command: [sh, -c, 'echo agent is up; exec sleep 3600']\n"
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v: %s", args, err, out)
		}
	}

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dash-%02d", i)
	}
	defer func() {
		for _, name := range names {
			_ = exec.Command("docker", "bottle", "rm", "-f", name).Run()
		}
	}()
	fmt.Printf("starting %d bottles (shell agent, docker backend)...\n", n)
	if err := startAll(names, repo); err != nil {
		return err
	}

	cli, err := command.NewDockerCli()
	if err != nil {
		return err
	}
	if err := cli.Initialize(flags.NewClientOptions()); err != nil {
		return err
	}
	eng := cli.Client()
	var bundles []string
	for _, name := range names {
		bundles = append(bundles, "bottle-"+name+"-bundle")
	}
	src, closeSrc, err := plugin.DashboardSource(cli)
	if err != nil {
		return err
	}
	defer closeSrc()
	counted := &countingSource{Source: src}
	ctx := context.Background()

	// Baseline: the bottles idle, nobody asking them anything.
	fmt.Printf("baseline: %d idle bottles, no dashboard, %s...\n", n, window)
	idle, err := measure(ctx, eng, bundles, func() { time.Sleep(window) })
	if err != nil {
		return err
	}

	// The dashboard: refreshes every interval, as the program does (the
	// interval counts from the end of one refresh to the next).
	m := dashboard.New(ctx, counted, dashboard.Options{Poll: dashboard.PollOptions{Timeout: 2 * time.Second, Parallel: 8}})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	refresh := func() (cpu, wall time.Duration) {
		c0, t0 := selfCPU(), time.Now()
		msg := m.Init()()
		m.Update(msg)
		_ = m.View()
		return selfCPU() - c0, time.Since(t0)
	}
	for range 2 { // warm: the first polls read every feed from its start
		refresh()
	}
	counted.requests.Store(0)
	counted.inspects.Store(0)
	counted.inspectTime.Store(0)
	fmt.Printf("dashboard: refreshing every %s for %s...\n", interval, window)
	var cpus, walls []time.Duration
	dash, err := measure(ctx, eng, bundles, func() {
		for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(interval) {
			c, w := refresh()
			cpus, walls = append(cpus, c), append(walls, w)
		}
	})
	if err != nil {
		return err
	}
	reqs := counted.requests.Load()
	inspect := time.Duration(counted.inspectTime.Load() / max(1, counted.inspects.Load()))

	ncpu := strings.TrimSpace(mustOut("nproc"))
	fmt.Printf("\n%d bottles, %s cores (shared with other work on this machine), refresh every %s, %d refreshes\n",
		n, ncpu, interval, len(cpus))
	fmt.Printf("dashboard CPU per refresh:      median %s, p90 %s (wall: median %s, p90 %s)\n",
		ms(pct(cpus, 50)), ms(pct(cpus, 90)), ms(pct(walls, 50)), ms(pct(walls, 90)))
	fmt.Printf("one bottle's facts from the engine: %s on average (%d read at most at once)\n", ms(inspect), 8)
	fmt.Printf("dashboard CPU over the window:  %.1f%% of one core\n", 100*float64(sum(cpus))/float64(dash.wall))
	fmt.Printf("supervisor requests:            %.1f/s in all, %.2f/s per bottle (baseline: 0)\n",
		float64(reqs)/dash.wall.Seconds(), float64(reqs)/dash.wall.Seconds()/float64(n))
	fmt.Printf("bundles' CPU, %d summed:        %.2f%% of one core idle, %.2f%% with the dashboard\n",
		n, idle.bundlesPct(), dash.bundlesPct())
	if idle.engineOK && dash.engineOK {
		fmt.Printf("engine (dockerd) CPU:           %.2f%% of one core idle, %.2f%% with the dashboard\n",
			idle.enginePct(), dash.enginePct())
	}
	return nil
}

// startAll starts the bottles, four at a time, each until its agent runs.
func startAll(names []string, repo string) error {
	sem := make(chan struct{}, 4)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := exec.Command("docker", "bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "quiet", repo).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("run %s: %v: %s", name, err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// phase is what one measured phase cost.
type phase struct {
	wall            time.Duration
	bundles, engine time.Duration
	engineOK        bool
}

func (p phase) bundlesPct() float64 { return 100 * float64(p.bundles) / float64(p.wall) }
func (p phase) enginePct() float64  { return 100 * float64(p.engine) / float64(p.wall) }

// measure runs f and says the CPU the bundles and the engine used
// meanwhile.
func measure(ctx context.Context, eng client.APIClient, bundles []string, f func()) (phase, error) {
	b0, err := bundlesCPU(ctx, eng, bundles)
	if err != nil {
		return phase{}, err
	}
	e0, eok0 := engineCPU()
	t0 := time.Now()
	f()
	wall := time.Since(t0)
	b1, err := bundlesCPU(ctx, eng, bundles)
	if err != nil {
		return phase{}, err
	}
	e1, eok1 := engineCPU()
	return phase{wall: wall, bundles: b1 - b0, engine: e1 - e0, engineOK: eok0 && eok1}, nil
}

// bundlesCPU is the CPU time the bundle containers used so far, summed.
func bundlesCPU(ctx context.Context, eng client.APIClient, bundles []string) (time.Duration, error) {
	var total uint64
	for _, b := range bundles {
		res, err := eng.ContainerStats(ctx, b, client.ContainerStatsOptions{})
		if err != nil {
			return 0, fmt.Errorf("stats of %s: %w", b, err)
		}
		var st container.StatsResponse
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		total += st.CPUStats.CPUUsage.TotalUsage
	}
	return time.Duration(total), nil //nolint:gosec // CPU nanoseconds of 20 containers fit in an int64
}

// engineCPU is the CPU time dockerd used so far, from /proc; false when
// its pid file says nothing (a remote engine).
func engineCPU() (time.Duration, bool) {
	pid, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		return 0, false
	}
	return procCPU(strings.TrimSpace(string(pid)))
}

// procCPU is a process's user and system time from /proc/PID/stat.
func procCPU(pid string) (time.Duration, bool) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command (which may hold spaces) in parens.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, true
}

// selfCPU is this process's user and system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingSource counts the requests the dashboard makes to the
// supervisors.
type countingSource struct {
	dashboard.Source
	requests atomic.Int64
	// inspects and inspectTime say how long reading a bottle's facts
	// from the engine takes (its state, output, usage).
	inspects, inspectTime atomic.Int64
}

func (c *countingSource) Inspect(ctx context.Context, name string) (dashboard.Facts, error) {
	t0 := time.Now()
	defer func() { c.inspects.Add(1); c.inspectTime.Add(int64(time.Since(t0))) }()
	return c.Source.Inspect(ctx, name)
}

func (c *countingSource) Supervisor(ctx context.Context, name string) (dashboard.Supervisor, error) {
	s, err := c.Source.Supervisor(ctx, name)
	if err != nil {
		return nil, err
	}
	return countingSupervisor{s, &c.requests}, nil
}

type countingSupervisor struct {
	dashboard.Supervisor
	n *atomic.Int64
}

func (c countingSupervisor) Held(ctx context.Context) ([]dashboard.Held, error) {
	c.n.Add(1)
	return c.Supervisor.Held(ctx)
}

func (c countingSupervisor) Events(ctx context.Context, after uint64) ([]dashboard.Line, error) {
	c.n.Add(1)
	return c.Supervisor.Events(ctx, after)
}

func (c countingSupervisor) Audit(ctx context.Context, after uint64) ([]dashboard.Line, error) {
	c.n.Add(1)
	return c.Supervisor.Audit(ctx, after)
}

func (c countingSupervisor) Health(ctx context.Context) (string, error) {
	c.n.Add(1)
	return c.Supervisor.Health(ctx)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mustOut(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return string(out)
}
