//go:build e2e

package main

import (
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// pushWork is a line of an agent's script: it commits agent.txt ("work"),
// pushes it to the bottle's branch through the gate and says "pushed".
const pushWork = `echo work > agent.txt && git add agent.txt && git commit -qm "agent work" && git push -q && echo pushed`

// agentDockerfile is an agent image on base with a non-root user (uid
// 1000) that owns /workspace.
func agentDockerfile(base string) string {
	return "FROM " + base + "\nRUN useradd -m -u 1000 agent && mkdir /workspace && chown agent /workspace\n" +
		"ENV HOME=/home/agent\nUSER 1000:1000\nWORKDIR /workspace\n"
}

// pushingShellRepo is a user's repository (testenv.GitRepoWith) whose
// bottle runs the shell agent in agentDockerfile(base): the lines of
// script (pushWork among them), then a long sleep; more is added to
// bottle.yaml as it is (egress: ...).
func pushingShellRepo(t *testing.T, base, script, more string) string {
	t.Helper()
	var spec strings.Builder
	spec.WriteString("agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command:\n    - sh\n    - -c\n    - |\n")
	for _, line := range strings.Split(strings.TrimSpace(script)+"\nexec sleep 600", "\n") {
		spec.WriteString("      " + line + "\n")
	}
	spec.WriteString(more)
	return testenv.GitRepoWith(t, map[string]string{"Dockerfile": agentDockerfile(base), "bottle.yaml": spec.String()})
}
