//go:build e2e

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/probe"
)

// TestCheckDockerBackend runs `docker bottle check` through the real docker
// CLI, as README's quickstart does: the probe agent in a real hardened
// container behind a real bundle, judged against every promise, with the
// host-side checks (the agent's branch fetched through the registered
// remote; the canary secret nowhere on the host side) and the cleanup.
func TestCheckDockerBackend(t *testing.T) {
	t.Parallel()
	checkPasses(t, []string{"DOCKER_BOTTLE_SMOLVM="})
}

// checkPasses runs `docker bottle check --backend docker` with env and
// fails the test unless every item of the card passes.
func checkPasses(t *testing.T, env []string) {
	checkPassesOn(t, testenv.Engine(t), testenv.DockerConfig(t), env)
}

// checkPassesOn is checkPasses with the docker config dir cfg, whose
// context env names the engine eng; it returns the card and check's
// stderr.
func checkPassesOn(t *testing.T, eng testenv.Lister, cfg string, env []string) (probe.Card, string) {
	r := docker(t, cfg, env, "bottle", "check", "--backend", "docker", "--format", "json")
	var card probe.Card
	if err := json.Unmarshal([]byte(r.stdout), &card); err != nil {
		t.Fatalf("check printed no card (exit %d): %v\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
	}
	items := map[string]bool{}
	for _, p := range card.Promises {
		for _, it := range p.Items {
			items[string(it.Check)] = true
			if it.Check == "cleanup" {
				// check removed its bottle: prove it, with more than the
				// card looks at.
				testenv.NothingLeft(t, eng, bottleIn(cfg, nil, it.Target, ""))
			}
			if it.Verdict != probe.Pass {
				t.Errorf("promise %d, %s %s: %s (%s)", p.Promise, it.Check, it.Target, it.Verdict, it.Evidence)
			}
		}
	}
	for _, want := range []string{"allowed", "unlisted", "direct", "lookup", "loopback", "secrets", "secret-on-host",
		"git-clone", "git-push-branch", "git-push-protected", "host-fetch", "event", "operator-route", "proxy-no-token",
		"non-root", "no-capabilities", "no-new-privileges", "read-only-root", "cleanup"} {
		if !items[want] {
			t.Errorf("the card has no %q item", want)
		}
	}
	if r.code != 0 || card.Failed() {
		t.Fatalf("check: exit %d, failed %v\nstderr:\n%s", r.code, card.Failed(), r.stderr)
	}
	if strings.Contains(r.stderr, "bottle-canary-") || strings.Contains(r.stdout, "bottle-canary-") {
		t.Error("the canary secret appears in check's output")
	}
	return card, r.stderr
}
