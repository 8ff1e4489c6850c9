package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// dockerBottle runs `docker bottle run -d` of a docker-backend bottle whose
// repository holds files (bottle.yaml and any build context), and removes
// it when the test ends.
func dockerBottle(t *testing.T, cfg, prefix string, files map[string]string) string {
	t.Helper()
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e6)
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(repo, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-qm", "bottle spec")
	r := docker(t, cfg, []string{"DOCKER_BOTTLE_SMOLVM="}, "bottle", "run", "-d", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	if r.code != 0 {
		t.Fatalf("run -d: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { docker(t, cfg, nil, "bottle", "rm", "-f", name) })
	return name
}

// TestLogsOnATerminalShowTheAgentsSequencesEscaped: the agent's output
// reaches a pipe as it came, and the user's terminal with what could take
// the terminal over (the clipboard, the screen, a hyperlink, bidi
// overrides) shown escaped.
func TestLogsOnATerminalShowTheAgentsSequencesEscaped(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "lg", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		`  command: [sh, -c, 'printf "clip\033]52;c;cGF5bG9hZA==\007 \033[2Jwipe \342\200\256evil\n"; echo agent-done; exec sleep 600']` + "\n"})
	raw := waitLogs(t, cfg, nil, name, "agent-done")
	if !strings.Contains(raw, "\x1b]52;c;cGF5bG9hZA==\x07") || !strings.Contains(raw, "\u202eevil") {
		t.Errorf("logs to a pipe are not the agent's bytes: %q", raw)
	}
	code, screen := onTerminal(t, cfg, nil, []string{"bottle", "logs", name}, "agent-done", "")
	if code != 0 {
		t.Fatalf("logs on a terminal: exit %d\n%q", code, screen)
	}
	for _, want := range []string{`\x1b]52;c;cGF5bG9hZA==\x07`, `\x1b[2Jwipe`, `\u202eevil`} {
		if !strings.Contains(screen, want) {
			t.Errorf("logs on a terminal do not show %s: %q", want, screen)
		}
	}
	if strings.Contains(screen, "\x1b]52") || strings.Contains(screen, "\x1b[2J") || strings.Contains(screen, "\u202e") {
		t.Errorf("the agent's sequences reached the terminal: %q", screen)
	}
}
