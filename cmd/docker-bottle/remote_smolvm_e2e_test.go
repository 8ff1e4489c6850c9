//go:build e2e

package main

import (
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// On a remote engine smolvm is not a choice: its machine would run on this
// client, away from the engine. doctor says auto uses docker there
// and why, on both context kinds, and `run --backend smolvm` is refused
// with that reason before it makes anything.
func TestSmolvmIsNotChosenOnARemoteEngine(t *testing.T) {
	remote := testenv.RemoteEngine(t)
	env := remote.Env()
	for _, ctx := range []string{remote.TLSContext, remote.SSHContext} {
		t.Run(ctx, func(t *testing.T) {
			rep := doctorReport(t, docker(t, remote.Config, env, "--context", ctx, "bottle", "doctor", "--format", "json"))
			var backend string
			for _, c := range rep.Checks {
				if c.Name == "backend" {
					backend = c.Detail
				}
			}
			if !strings.Contains(backend, "auto uses docker") || !strings.Contains(backend, "smolvm runs the machine on this client") ||
				!strings.Contains(backend, "context \""+ctx+"\" is on another host") {
				t.Errorf("doctor's backend check on %s: %q", ctx, backend)
			}

			repo := testenv.GitRepoWith(t, map[string]string{"bottle.yaml": "agent:\n  provider: shell\n"})
			run := docker(t, remote.Config, env, "--context", ctx, "bottle", "run", "-d", "--backend", "smolvm", repo)
			if run.code == 0 || !strings.Contains(run.stderr, "--backend smolvm: smolvm runs the machine on this client") {
				t.Errorf("run --backend smolvm on %s: exit %d, want the smolvm refusal:\n%s", ctx, run.code, run.stderr)
			}
			if ps := docker(t, remote.Config, env, "--context", ctx, "ps", "-aq", "--filter", "label=dev.dockerbottle.bottle"); ps.stdout != "" {
				t.Errorf("the refused run left containers on the remote engine: %s", ps.stdout)
			}
		})
	}
}
