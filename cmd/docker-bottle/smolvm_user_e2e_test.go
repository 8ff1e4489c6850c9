//go:build e2e

package main

import (
	"os"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// TestSmolvmAgentRunsAsTheImageUser: on a smolvm with --user (1.14.2 and
// later; the contract fake answers as 1.32.2), the agent in the machine
// runs as its image's USER, and an image that would run as root runs as
// the stand-in user, as on the docker backend. On an older smolvm the
// agent runs as root, which doctor warns about. Through the real docker
// CLI; the fake changes user as smolvm does.
func TestSmolvmAgentRunsAsTheImageUser(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	if os.Geteuid() != 0 {
		t.Fatal("the fake changes user only when run as root (CI runs as root)")
	}
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.DockerConfig(t)
	for _, c := range []struct {
		name, user, version, want string
	}{
		{"named", "RUN useradd -u 1234 -m agent\nUSER agent\nENV HOME=/home/agent", "", "1234"},
		{"root", "ENV HOME=/root", "", "65534"},
		{"old", "RUN useradd -u 1234 -m agent\nUSER agent\nENV HOME=/home/agent", "1.9.3", "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := []string{"DOCKER_BOTTLE_SMOLVM=" + fake, "SMOLVM_FAKE_STATE=" + t.TempDir()}
			if c.version != "" {
				env = append(env, "SMOLVM_FAKE_VERSION="+c.version)
			}
			name := bottleOf(t, cfg, env, "smolvm", "su-"+c.name, map[string]string{
				"Dockerfile":  "FROM " + base + "\nRUN git init -q /workspace\n" + c.user + "\nWORKDIR /workspace\n",
				"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'echo \"agent uid $(id -u)\"; sleep 600']\n",
			})
			logs := waitLogs(t, cfg, env, name, "agent uid")
			if !strings.Contains(logs, "agent uid "+c.want+"\r\n") {
				t.Errorf("the agent of a %s image on smolvm %s: %q, want uid %s", c.name, c.version, logs, c.want)
			}
		})
	}
}
