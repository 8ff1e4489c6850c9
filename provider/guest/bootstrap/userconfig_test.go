package bootstrap

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/docker-bottle/docker-bottle/agentconf"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

// userConfigTar packs, as the plugin does, the configuration of a user's
// home for an agent; files maps home-relative paths to contents.
func userConfigTar(t *testing.T, dir, agent string, files map[string]string) string {
	t.Helper()
	home := filepath.Join(dir, "host-home")
	for rel, content := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(home, rel)), 0o755))
		must(t, os.WriteFile(filepath.Join(home, rel), []byte(content), 0o644))
	}
	snap, err := agentconf.Collect(agentconf.Options{Home: home, Provider: agent, Setting: spec.UserConfig{Mode: spec.UserConfigAuto}})
	must(t, err)
	b, err := snap.Tar()
	must(t, err)
	p := filepath.Join(dir, "run", "user-config.tar")
	must(t, os.WriteFile(p, b, 0o644))
	return p
}

// TestInitCopiesUserConfig: at the first start, the user's Claude Code
// settings land in the agent's home, the onboarding is merged into the
// carried ~/.claude.json, a local MCP server whose command the image lacks
// is dropped, and a restart keeps what the agent changed.
func TestInitCopiesUserConfig(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "claude", "exit 0")
	r.fakeAgent(t, "present-mcp", "exit 0")
	tarPath := userConfigTar(t, r.dir, spec.ProviderClaude, map[string]string{
		".claude/CLAUDE.md":          "Always answer in haiku.\n",
		".claude/commands/review.md": "Review the diff.\n",
		".claude.json": `{"oauthAccount": {"emailAddress": "me@example.com"}, "mcpServers": {
			"here": {"command": "present-mcp"}, "gone": {"command": "absent-mcp"},
			"remote": {"type": "http", "url": "https://mcp.example.com/mcp"}}}`,
	})
	env := append(slices.Clone(r.env), guest.EnvUserConfig+"="+tarPath)
	a := plan.AgentProvision{Provider: "claude", Command: []string{"claude"}, PromptMode: provider.PromptAppendSystemPromptFile}
	_, stderr, err := r.run(t, a, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(r.home, ".claude/CLAUDE.md")); err != nil || string(b) != "Always answer in haiku.\n" {
		t.Errorf("CLAUDE.md: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(r.home, ".claude/commands/review.md")); err != nil || string(b) != "Review the diff.\n" {
		t.Errorf("review.md: %q %v", b, err)
	}
	b, err := os.ReadFile(filepath.Join(r.home, ".claude.json"))
	must(t, err)
	var state struct {
		HasCompletedOnboarding bool
		OauthAccount           any
		Projects               map[string]struct{ HasTrustDialogAccepted bool }
		MCPServers             map[string]any `json:"mcpServers"`
	}
	must(t, json.Unmarshal(b, &state))
	if !state.HasCompletedOnboarding || !state.Projects[r.ws].HasTrustDialogAccepted || state.OauthAccount != nil {
		t.Errorf(".claude.json: %s", b)
	}
	if _, here := state.MCPServers["here"]; !here || state.MCPServers["gone"] != nil || state.MCPServers["remote"] == nil {
		t.Errorf("MCP servers: %v", state.MCPServers)
	}
	if !strings.Contains(stderr, "MCP server gone skipped: absent-mcp is not in the agent image") ||
		!strings.Contains(stderr, "copied 3 files of your agent settings") {
		t.Errorf("stderr: %s", stderr)
	}

	// A restarted bottle keeps the agent's own changes.
	must(t, os.WriteFile(filepath.Join(r.home, ".claude/CLAUDE.md"), []byte("changed in the bottle\n"), 0o644))
	if _, stderr, err := r.run(t, a, env); err != nil || strings.Contains(stderr, "copied") {
		t.Fatalf("restart: %v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(r.home, ".claude/CLAUDE.md")); string(b) != "changed in the bottle\n" {
		t.Errorf("restart overwrote CLAUDE.md: %q", b)
	}
}

// TestInitCodexAgentsFileKeepsTheUsers: the bottle's prompt goes after the
// user's own AGENTS.md, the same on every start.
func TestInitCodexAgentsFileKeepsTheUsers(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "codex", "exit 0")
	tarPath := userConfigTar(t, r.dir, spec.ProviderCodex, map[string]string{".codex/AGENTS.md": "Prefer small commits.\n"})
	must(t, os.WriteFile(r.prompt, []byte("Answer in French."), 0o600))
	env := append(slices.Clone(r.env), guest.EnvUserConfig+"="+tarPath)
	codex, _ := provider.Get("codex")
	a := plan.AgentProvision{Provider: "codex", Command: codex.Defaults.Command, PromptMode: codex.PromptMode}
	for range 2 {
		if _, stderr, err := r.run(t, a, env); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if b, err := os.ReadFile(filepath.Join(r.home, ".codex/AGENTS.md")); err != nil || string(b) != "Prefer small commits.\n\nAnswer in French." {
			t.Errorf("AGENTS.md: %q %v", b, err)
		}
	}
}

// TestInitCopiesCodexMCPServersTheImageHas: of the local MCP servers in
// the user's Codex config.toml, only those whose command is in the image
// reach the bottle's; the one that is not is named as skipped, and remote
// servers and the rest of the file stay.
func TestInitCopiesCodexMCPServersTheImageHas(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "codex", "exit 0")
	r.fakeAgent(t, "present-mcp", "exit 0")
	tarPath := userConfigTar(t, r.dir, spec.ProviderCodex, map[string]string{".codex/config.toml": `model = "gpt-5-codex"

[mcp_servers.here]
command = "present-mcp"
args = ["--stdio"]

[mcp_servers.gone]
command = "absent-mcp"

[mcp_servers.remote]
url = "https://mcp.example.com/mcp"
`})
	env := append(slices.Clone(r.env), guest.EnvUserConfig+"="+tarPath)
	codex, _ := provider.Get("codex")
	a := plan.AgentProvision{Provider: "codex", Command: codex.Defaults.Command, PromptMode: codex.PromptMode}
	_, stderr, err := r.run(t, a, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(r.home, ".codex/config.toml"))
	must(t, err)
	var cfg struct {
		Model      string
		MCPServers map[string]map[string]any `toml:"mcp_servers"`
	}
	must(t, toml.Unmarshal(b, &cfg))
	if cfg.Model != "gpt-5-codex" || len(cfg.MCPServers) != 2 || cfg.MCPServers["gone"] != nil ||
		cfg.MCPServers["here"]["command"] != "present-mcp" || cfg.MCPServers["remote"]["url"] != "https://mcp.example.com/mcp" {
		t.Errorf("config.toml in the bottle:\n%s", b)
	}
	if !strings.Contains(stderr, "MCP server gone skipped: absent-mcp is not in the agent image") || strings.Contains(stderr, "server here skipped") {
		t.Errorf("stderr: %s", stderr)
	}
}

// TestReadUserConfigRefusesWhatIsNotAHomeFile: the bootstrap unpacks only
// regular files under the home, whatever the tar says.
func TestReadUserConfigRefusesWhatIsNotAHomeFile(t *testing.T) {
	for _, name := range []string{"../escape", "/etc/passwd", ".claude/../../x", "a//b"} {
		var b strings.Builder
		tw := newTarWriter(&b)
		tw.file(t, name, "x")
		if _, err := readUserConfig(strings.NewReader(b.String())); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

type tarWriter struct{ *tar.Writer }

func newTarWriter(w io.Writer) tarWriter { return tarWriter{tar.NewWriter(w)} }

func (tw tarWriter) file(t *testing.T, name, content string) {
	t.Helper()
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}))
	_, err := tw.Write([]byte(content))
	must(t, err)
	must(t, tw.Close())
}
