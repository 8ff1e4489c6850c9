//go:build e2e

package main

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// TestCodexUserConfigOnDocker: the user's Codex settings (CODEX_HOME, a
// test folder) reach a bottle on the docker backend with, of its local MCP
// servers, only the one whose command the agent image has; the other is
// named as skipped. `docker bottle config --format json` says what is
// carried and that the remote server's host is not allowed. And the
// settings are a snapshot: what the agent changes in its copy never
// reaches the user's files.
func TestCodexUserConfigOnDocker(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	userDir := filepath.Join(t.TempDir(), "codex-home")
	host := map[string]string{
		"config.toml": `model = "gpt-5-codex"

[mcp_servers.here]
command = "sh"

[mcp_servers.gone]
command = "absent-mcp-server"

[mcp_servers.docs]
url = "https://mcp.docs.example.com/mcp"
`,
		"AGENTS.md": "Prefer small commits.\n",
	}
	testio.WriteFiles(t, userDir, host)
	files := map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN git init -q /workspace\nENV HOME=/root\nWORKDIR /workspace\n",
		"bottle.yaml": `agent:
  provider: codex
  dockerfile: Dockerfile
  command:
    - sh
    - -c
    - |
      cat ~/.codex/config.toml
      echo changed-in-bottle >> ~/.codex/AGENTS.md
      echo '# changed-in-bottle' >> ~/.codex/config.toml
      touch ~/.codex/new-in-bottle
      echo "copies changed in the bottle: $(cat ~/.codex/AGENTS.md ~/.codex/config.toml | grep -c changed-in-bottle)"
      sleep 600
`,
	}
	env := []string{"CODEX_HOME=" + userDir, "OPENAI_API_KEY=sk-proj-test"}

	// What config says, through the real docker CLI: local servers are
	// not checked yet (the image may not be built); the remote one's host
	// is not allowed by the egress rules.
	specDir := t.TempDir()
	testio.WriteFiles(t, specDir, files)
	r := docker(t, cfg, env, "bottle", "config", "--format", "json", "-f", filepath.Join(specDir, "bottle.yaml"))
	var got struct {
		UserConfig struct {
			Files      []struct{ Path, Source string }
			MCPServers []struct {
				Name, Host, Command, Note string
				Carried                   bool
			}
			NotAllowed []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil {
		t.Fatalf("config --format json: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	uc := got.UserConfig
	if len(uc.Files) != 2 || uc.Files[1].Path != ".codex/config.toml" || uc.Files[1].Source != filepath.Join(userDir, "config.toml") {
		t.Errorf("config's files: %+v", uc.Files)
	}
	var names []string
	for _, m := range uc.MCPServers {
		names = append(names, m.Name)
		if m.Name == "docs" && (!m.Carried || !strings.Contains(m.Note, "the egress rules do not allow mcp.docs.example.com:443")) {
			t.Errorf("config's docs server: %+v", m)
		}
	}
	if !slices.Equal(names, []string{"docs", "gone", "here"}) || !slices.Equal(uc.NotAllowed, []string{"mcp.docs.example.com:443"}) {
		t.Errorf("config's MCP servers: %+v, not allowed %q", uc.MCPServers, uc.NotAllowed)
	}

	name := bottleOf(t, cfg, env, "docker", "ucx", files)
	logs := strings.ReplaceAll(waitLogs(t, cfg, env, name, "copies changed in the bottle:"), "\r\n", "\n")
	for _, want := range []string{
		"[mcp_servers.here]\ncommand = 'sh'",
		"[mcp_servers.docs]\nurl = 'https://mcp.docs.example.com/mcp'",
		"copies changed in the bottle: 2",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the bottle's logs lack %q:\n%s", want, logs)
		}
	}
	// The bootstrap says what it skipped on the agent's stderr, which the
	// terminal of a detached agent merges with its output.
	if !strings.Contains(logs, "MCP server gone skipped: absent-mcp-server is not in the agent image") {
		t.Errorf("the bottle's logs do not name the skipped server:\n%s", logs)
	}
	if strings.Contains(logs, "[mcp_servers.gone]") {
		t.Errorf("the server whose command the image lacks reached the bottle:\n%s", logs)
	}

	// The user's files are as they were, and nothing was added beside them.
	if got := hostFiles(t, userDir); !maps.Equal(got, host) {
		t.Errorf("the bottle wrote back to the user's settings: %q, want %q", got, host)
	}
}
