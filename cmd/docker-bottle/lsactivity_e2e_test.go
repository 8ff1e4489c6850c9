//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// lsActivity is a bottle as `docker bottle ls --format json` shows what
// the dashboard shows of it.
type lsActivity struct {
	Name, Repository, Branch, Activity, RunningFor string
	CPUPerc, MemUsage, LastOutput                  string
	Waiting                                        int
	ExitCode                                       *int
}

// TestLsJSONShowsWhatTheDashboardShows runs real bottles on the docker
// backend and reads them with `docker bottle ls -a --format json` through
// the real docker CLI: a working agent with its repository, branch,
// requests waiting, CPU and memory (of its agent and bundle) and last line
// of output; an agent that exited with its code.
func TestLsJSONShowsWhatTheDashboardShows(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	working := dockerBottle(t, cfg, "lsw", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sh, -c, 'while :; do echo working on it; sleep 1; done']\n"})
	exited := dockerBottle(t, cfg, "lsx", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sh, -c, 'for i in 1 2 3; do echo last words; sleep 1; done; exit 3']\n"})
	waitLogs(t, cfg, nil, working, "working on it")

	var rows map[string]lsActivity
	testio.Eventually(t, time.Minute, func() bool {
		r := docker(t, cfg, nil, "bottle", "ls", "-a", "--format", "json")
		if r.code != 0 {
			t.Fatalf("ls: exit %d %s", r.code, r.stderr)
		}
		rows = map[string]lsActivity{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var a lsActivity
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			rows[a.Name] = a
		}
		// The agents print their lines again and again: the bottle's own
		// line (the branch it is on) comes before them.
		return rows[exited].Activity == "exited (3)" && rows[working].LastOutput == "working on it"
	}, func() string { return fmt.Sprintf("the exited agent shown with its code: %+v", rows) })

	w := rows[working]
	if w.Activity != "working" || w.LastOutput != "working on it" || w.Waiting != 0 || w.ExitCode != nil ||
		!strings.HasPrefix(w.Branch, "bottle/"+working+"/") || !filepath.IsAbs(w.Repository) ||
		!strings.HasSuffix(w.RunningFor, " ago") {
		t.Errorf("the working bottle: %+v", w)
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]%$`).MatchString(w.CPUPerc) || !regexp.MustCompile(`^[0-9.]+[KMG]$`).MatchString(w.MemUsage) {
		t.Errorf("the working bottle's usage: CPU %q, memory %q", w.CPUPerc, w.MemUsage)
	}
	x := rows[exited]
	if x.ExitCode == nil || *x.ExitCode != 3 || x.LastOutput != "last words" {
		t.Errorf("the exited bottle: %+v (exit code %v)", x, x.ExitCode != nil && *x.ExitCode == 3)
	}
}
