package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/agentconf"
	"github.com/docker-bottle/docker-bottle/spec"
)

// userHome makes a home with Claude Code settings and points HOME at it.
func userHome(t *testing.T, files map[string]string) {
	t.Helper()
	home := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(home, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	t.Setenv("CLAUDE_CONFIG_DIR", "")
}

func TestConfigShowsTheUserConfig(t *testing.T) {
	userHome(t, map[string]string{
		".claude/CLAUDE.md":         "Always answer in haiku.\n",
		".claude/.credentials.json": `{"claudeAiOauth":{"accessToken":"x"}}`,
		".claude.json": `{"mcpServers": {"docs": {"type": "http", "url": "https://mcp.docs.example.com/mcp"},
			"api": {"type": "http", "url": "https://api.anthropic.com/mcp"}}}`,
	})
	dir := t.TempDir()
	ls, err := loadSpec(specOptions{}, dir, spec.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	report, err := userConfigReportOf(ls)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report.writeText(&out)
	got := out.String()
	for _, want := range []string{
		"# agent.user_config: a bottle carries 2 files",
		"#   ~/.claude/CLAUDE.md -> ~/.claude/CLAUDE.md (24 bytes)",
		"# MCP server docs (http, ~/.claude.json): carried: the egress rules do not allow mcp.docs.example.com:443: add it to egress.allow",
		"# MCP server api (http, ~/.claude.json): carried: reached through the proxy",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "credentials") {
		t.Errorf("config mentions the login file:\n%s", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Errorf("not a YAML comment: %q", line)
		}
	}

	var msg bytes.Buffer
	if b, err := userConfigTar(ls, &msg); len(b) == 0 || err != nil ||
		!strings.HasPrefix(msg.String(), "Carrying 2 files of your agent settings into the bottle, 1 left out (") ||
		!strings.Contains(msg.String(), "MCP server docs (~/.claude.json) is carried, but the egress rules do not allow mcp.docs.example.com:443") {
		t.Errorf("run's preflight: %d bytes, %v, %q", len(b), err, msg.String())
	}

	// --no-user-config carries nothing, and a run's snapshot is then nil.
	ls, err = loadSpec(specOptions{}, dir, spec.Overrides{NoUserConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	msg.Reset()
	if b, err := userConfigTar(ls, &msg); b != nil || err != nil || msg.Len() != 0 {
		t.Errorf("--no-user-config: %d bytes, %v, %q", len(b), err, msg.String())
	}
}

// TestConfigJSONHasTheUserConfig: config --format json says what the text
// says of the user's settings, under UserConfig, its keys capitalised as
// the project's other JSON; the spec keeps its bottle.yaml keys, and a
// secret in a carried file is said there and fails the command.
func TestConfigJSONHasTheUserConfig(t *testing.T) {
	useStateDir(t)
	userHome(t, map[string]string{
		".claude/CLAUDE.md": "Always answer in haiku.\n",
		".claude.json": `{"mcpServers": {"docs": {"type": "http", "url": "https://mcp.docs.example.com/mcp"},
			"py": {"command": "uvx"}}}`,
	})
	t.Chdir(t.TempDir())
	out, _, err := runCommand(context.Background(), t, "config", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Agent      struct{ Provider string } `json:"agent"`
		UserConfig struct {
			Files      []struct{ Path, Source string }
			LeftOut    []struct{ Path, Reason string }
			MCPServers []struct {
				Name, Transport, Host, Command, Note string
				Port                                 int
				Carried                              bool
			}
			NotAllowed []string
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	uc := got.UserConfig
	if got.Agent.Provider != "claude" || raw["git"] == nil || len(uc.Files) != 2 || uc.Files[0].Source != "~/.claude.json" || uc.Files[1].Path != ".claude/CLAUDE.md" {
		t.Errorf("config --format json:\n%s", out)
	}
	if !slices.ContainsFunc(uc.LeftOut, func(l struct{ Path, Reason string }) bool {
		return l.Path == "~/.claude.json" && strings.Contains(l.Reason, "login")
	}) {
		t.Errorf("left out: %+v", uc.LeftOut)
	}
	if len(uc.MCPServers) != 2 || uc.MCPServers[0].Name != "docs" || !uc.MCPServers[0].Carried || uc.MCPServers[0].Port != 443 ||
		!strings.Contains(uc.MCPServers[0].Note, "the egress rules do not allow mcp.docs.example.com:443") ||
		uc.MCPServers[1].Command != "uvx" || uc.MCPServers[1].Transport != "stdio" {
		t.Errorf("MCP servers: %+v", uc.MCPServers)
	}
	if !slices.Equal(uc.NotAllowed, []string{"mcp.docs.example.com:443"}) {
		t.Errorf("not allowed: %q", uc.NotAllowed)
	}
	for _, key := range []string{`"files"`, `"left_out"`, `"mcp_servers"`, `"source"`} {
		if strings.Contains(out, key) {
			t.Errorf("a lower-case key %s in:\n%s", key, out)
		}
	}

	userHome(t, map[string]string{".claude/commands/deploy.md": "Deploy with ghp_R8t2Yv6Bn4Mq9Wx1Zc7Lk3Hj5Gf0Ds8Ap2Q\n"})
	out, _, err = runCommand(context.Background(), t, "config", "--format", "{{json .UserConfig}}")
	var se *agentconf.SecretError
	if !errors.As(err, &se) || !strings.Contains(out, `"Refused":"~/.claude/commands/deploy.md:1 holds what looks like a GitHub token`) {
		t.Errorf("a secret: %v\n%s", err, out)
	}
}

func TestRunRefusesASecretInTheUserConfig(t *testing.T) {
	userHome(t, map[string]string{".claude/commands/deploy.md": "Deploy with ghp_R8t2Yv6Bn4Mq9Wx1Zc7Lk3Hj5Gf0Ds8Ap2Q\n"})
	ls, err := loadSpec(specOptions{}, t.TempDir(), spec.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var msg bytes.Buffer
	b, err := userConfigTar(ls, &msg)
	var se *agentconf.SecretError
	if !errors.As(err, &se) || b != nil || se.File != "~/.claude/commands/deploy.md" {
		t.Errorf("userConfigTar = %d bytes, %v", len(b), err)
	}
}
