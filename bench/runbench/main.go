// Command runbench times `docker bottle run -d` until the agent's first
// line, with a warm cache, against `docker run -d` of the same image until
// its first line (docs/benchmarks.md, "docker bottle run"), on the current
// docker context or on -context (docs/benchmarks.md, "Remote contexts").
// Run it through bench/run.sh, which also measures the bundle's warm
// bring-up, or bench/remote.sh, which runs it on each context.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const base = "docker-bottle-test/bookworm-base:1"

func main() {
	runs := flag.Int("runs", 5, "runs of each kind")
	plugin := flag.String("plugin", "bin/docker-bottle", "the plugin binary")
	var o options
	flag.StringVar(&o.context, "context", "", "the docker context to run on (default: the current one)")
	flag.StringVar(&o.contexts, "contexts-from", "", "a DOCKER_CONFIG whose contexts to use (bash hack/remote-engine.sh env)")
	flag.BoolVar(&o.bottle, "bottle", true, "time docker bottle run too; without it only docker run, of an image docker build makes")
	flag.BoolVar(&o.row, "row", false, "print one table row (context, docker run, docker bottle run) instead of the summary")
	flag.Parse()
	o.runs, o.plugin = *runs, *plugin
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "runbench:", err)
		os.Exit(1)
	}
}

type options struct {
	runs            int
	plugin, context string
	contexts        string
	bottle, row     bool
}

func run(o options) error {
	runs := o.runs
	work, err := os.MkdirTemp("", "runbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg := filepath.Join(work, "docker-config")
	if err := os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755); err != nil {
		return err
	}
	if o.contexts != "" {
		// The contexts' metadata and TLS files, as the docker CLI keeps them.
		if out, err := exec.Command("cp", "-r", filepath.Join(o.contexts, "contexts"), cfg).CombinedOutput(); err != nil {
			return fmt.Errorf("copying the contexts of %s: %v: %s", o.contexts, err, out)
		}
	}
	data, err := os.ReadFile(o.plugin)
	if err != nil {
		return fmt.Errorf("the plugin (make build): %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "cli-plugins", "docker-bottle"), data, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(work, "cache"), "DOCKER_BOTTLE_SMOLVM=")
	repo := filepath.Join(work, "repo")
	files := map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN useradd -m -u 1000 agent && mkdir /workspace && chown agent /workspace\n" +
			"ENV HOME=/home/agent\nUSER 1000:1000\nWORKDIR /workspace\n",
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'echo agent is up; exec sleep 600']\n",
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(repo, f), []byte(c), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"-c", "user.name=b", "-c", "user.email=b@example.test", "commit", "-qm", "bench"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v: %s", args, err, out)
		}
	}
	docker := func(args ...string) (string, error) {
		if o.context != "" {
			args = append([]string{"--context", o.context}, args...)
		}
		c := exec.Command("docker", args...)
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	waitLine := func(logs ...string) error {
		for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(10 * time.Millisecond) {
			if out, _ := docker(logs...); strings.Contains(out, "agent is up") {
				return nil
			}
		}
		return fmt.Errorf("no first line from %v", logs)
	}

	image := "docker-bottle/build:repo"
	if o.bottle {
		// Warm the caches: the agent image, its bottle layer, the bundle image.
		if out, err := docker("bottle", "run", "-d", "--backend", "docker", "--name", "warmup", "--progress", "quiet", repo); err != nil {
			return fmt.Errorf("warm-up run: %v: %s", err, out)
		}
		if err := waitLine("bottle", "logs", "warmup"); err != nil {
			return err
		}
		docker("bottle", "rm", "-f", "warmup")
	} else {
		// The same Dockerfile, built by the context's engine.
		image = "runbench/agent:1"
		if out, err := docker("build", "-q", "-t", image, repo); err != nil {
			return fmt.Errorf("docker build: %v: %s", err, out)
		}
		defer docker("image", "rm", image)
	}

	var bottle, bare []time.Duration
	for i := 0; i < runs; i++ {
		name := fmt.Sprintf("rb-%d-%d", os.Getpid(), i)
		if o.bottle {
			start := time.Now()
			if out, err := docker("bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "quiet", repo); err != nil {
				return fmt.Errorf("bottle run: %v: %s", err, out)
			}
			if err := waitLine("bottle", "logs", name); err != nil {
				return err
			}
			bottle = append(bottle, time.Since(start))
			docker("bottle", "rm", "-f", name)
		}

		start := time.Now()
		if out, err := docker("run", "-d", "--name", name, image, "sh", "-c", "echo agent is up; exec sleep 600"); err != nil {
			return fmt.Errorf("docker run: %v: %s", err, out)
		}
		if err := waitLine("logs", name); err != nil {
			return err
		}
		bare = append(bare, time.Since(start))
		docker("rm", "-f", name)
		if o.bottle {
			fmt.Fprintf(os.Stderr, "run %d: bottle %7.1f ms, docker run %7.1f ms\n", i+1, ms(bottle[i]), ms(bare[i]))
		} else {
			fmt.Fprintf(os.Stderr, "run %d: docker run %7.1f ms\n", i+1, ms(bare[i]))
		}
	}
	md := median(bare)
	if o.row {
		ctx := o.context
		if ctx == "" {
			ctx = "(current)"
		}
		row := fmt.Sprintf("| %s | %.0f ms |", ctx, ms(md))
		if o.bottle {
			mb := median(bottle)
			row += fmt.Sprintf(" %.0f ms | %.2fx |", ms(mb), float64(mb)/float64(md))
		} else {
			row += " waits for the refusal to be lifted | |"
		}
		fmt.Println(row)
		return nil
	}
	if !o.bottle {
		fmt.Printf("\nmedian of %d runs, until the first line: docker run -d IMAGE %7.1f ms\n", runs, ms(md))
		return nil
	}
	mb := median(bottle)
	fmt.Printf("\nmedian of %d runs, warm cache, until the agent's first line:\n", runs)
	fmt.Printf("  docker run -d IMAGE                 %7.1f ms\n", ms(md))
	fmt.Printf("  docker bottle run -d (docker)       %7.1f ms  (%.2fx docker run)\n", ms(mb), float64(mb)/float64(md))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
