// Command bringupbench times the bundle's bring-up against a bare `docker
// run -d` of the same image with the same flags, each until the supervisor
// answers healthy (docs/benchmarks.md, "Bundle bring-up"). Run it through
// bench/bringup.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

func main() {
	runs := flag.Int("runs", 5, "runs of each kind")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bringupbench:", err)
		os.Exit(1)
	}
}

func run(runs int) error {
	ctx := context.Background()
	eng, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bringupbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dirs := stage.Dirs{State: filepath.Join(work, "state"), Cache: filepath.Join(work, "cache")}
	if _, err := pki.LoadOrCreateCA(dirs.CA()); err != nil {
		return err
	}
	repo := filepath.Join(work, "repo")
	if err := gitstage.Init(ctx, repo, "b <b@example.test>", "x"); err != nil {
		return err
	}
	pool, _ := stage.PoolFromEnv()
	alloc := &stage.Allocator{Pool: pool, Dir: dirs.Subnets(), Engine: eng}
	prov, _ := provider.Get(spec.ProviderShell)
	s := (&spec.Spec{}).Resolve(prov.Defaults)

	prepare := func(i int) (plan.Plan, []bringup.Mount, error) {
		p, err := stage.Prepare(ctx, stage.Options{Spec: s, NameFlag: fmt.Sprintf("bench-%d-%d", os.Getpid(), i), Workspace: repo,
			Provider: prov.Plan(), Choice: plan.Choice{Backend: spec.BackendSmolvm, NetworkMode: spec.NetworkBridge},
			Dirs: dirs, Allocator: alloc})
		if err != nil {
			return p, nil, err
		}
		if err := gitstage.Prepare(ctx, repo, p.GitGate.Repo); err != nil {
			return p, nil, err
		}
		m, err := bringup.WriteConfig(p, bringup.ConfigOptions{CADir: dirs.CA()})
		return p, m, err
	}
	finish := func(p plan.Plan) {
		bringup.Down(ctx, eng, p.Slug)
		alloc.Release(p.Bundle.Reserved, p.Slug)
		os.RemoveAll(p.StageDir)
	}
	tag, err := bringup.EnsureImage(ctx, eng)
	if err != nil {
		return err
	}

	var cold, warm, bare []time.Duration
	i := 0
	for r := 0; r < runs; r++ {
		// Cold: the image is absent and is assembled and loaded.
		if out, err := exec.Command("docker", "rmi", "-f", tag).CombinedOutput(); err != nil {
			return fmt.Errorf("docker rmi: %v: %s", err, out)
		}
		for _, kind := range []string{"cold", "warm", "bare"} {
			i++
			p, mounts, err := prepare(i)
			if err != nil {
				return err
			}
			var d time.Duration
			switch kind {
			case "cold", "warm":
				start := time.Now()
				_, err = bringup.Up(ctx, eng, bringup.Options{Plan: p, Mounts: mounts, Health: bringup.Health, Allocator: alloc})
				d = time.Since(start)
			case "bare":
				d, err = bareRun(ctx, p, mounts, tag)
			}
			finish(p)
			if err != nil {
				return fmt.Errorf("%s run: %w", kind, err)
			}
			switch kind {
			case "cold":
				cold = append(cold, d)
			case "warm":
				warm = append(warm, d)
			case "bare":
				bare = append(bare, d)
			}
			fmt.Printf("run %d %-4s %7.1f ms\n", r+1, kind, ms(d))
		}
	}
	mc, mw, mb := median(cold), median(warm), median(bare)
	fmt.Printf("\nmedian of %d runs, each until the supervisor answers healthy:\n", runs)
	fmt.Printf("  bare docker network create + docker run -d  %7.1f ms\n", ms(mb))
	fmt.Printf("  warm bring-up (image present)               %7.1f ms  (%.2fx bare)\n", ms(mw), float64(mw)/float64(mb))
	fmt.Printf("  cold bring-up (image assembled and loaded)  %7.1f ms  (%.2fx bare)\n", ms(mc), float64(mc)/float64(mb))
	return nil
}

// bareRun does by hand with the docker CLI what bring-up does: the same
// network, the same container flags, then the same health wait.
func bareRun(ctx context.Context, p plan.Plan, mounts []bringup.Mount, image string) (time.Duration, error) {
	args := []string{"run", "-d", "--name", p.Bundle.Container, "--label", plan.LabelBottle + "=" + p.Slug,
		"--network", p.Bundle.Network, "--ip", p.Bundle.IP.String(),
		"-p", "127.0.0.1::3128", "-p", "127.0.0.1::8418", "-p", "127.0.0.1::8419",
		"--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "--read-only", "--cap-drop", "ALL",
		"--security-opt", "no-new-privileges:true", "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m",
		"--memory", "512m", "--pids-limit", "256",
		"--mount", "type=bind,source=" + p.StageDir + ",target=" + bringup.StageMount}
	for _, m := range mounts {
		args = append(args, "--mount", "type=bind,readonly,source="+m.Source+",target="+m.Target)
	}
	args = append(args, image)
	start := time.Now()
	if out, err := exec.Command("docker", "network", "create", "--label", plan.LabelBottle+"="+p.Slug,
		"--subnet", p.Bundle.Subnet.String(), "--gateway", p.Bundle.Gateway.String(), p.Bundle.Network).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker network create: %v: %s", err, out)
	}
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker run: %v: %s", err, out)
	}
	out, err := exec.Command("docker", "port", p.Bundle.Container, "8419/tcp").Output()
	if err != nil {
		return 0, fmt.Errorf("docker port: %v", err)
	}
	addr := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	q := p.WithEndpoints(plan.HostPorts{Proxy: 1, Gate: 1, Supervise: port(addr)})
	for {
		if err := bringup.Health(ctx, q); err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > 30*time.Second {
			return 0, fmt.Errorf("the bare container never answered healthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func port(addr string) uint16 {
	var n uint16
	fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &n)
	return n
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
