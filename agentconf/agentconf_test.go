package agentconf

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Credentials planted in the test home: none may appear in any snapshot.
const (
	oauthToken   = "sk-ant-oat01-Zq3vX9pL2mN8kR4tY7wB1cD5fG6hJ0aS3eU9iO2pQ4rT6yW8zXv"
	apiKey       = "sk-ant-api03-Hk4Lm9Np2Qr7St1Uv6Wx3Yz8Ab5Cd0Ef-Gh2Ij7Kl4Mn9OpQAA"
	githubToken  = "ghp_R8t2Yv6Bn4Mq9Wx1Zc7Lk3Hj5Gf0Ds8Ap2Q"
	mcpBearer    = "Bearer mcp-session-token-not-in-a-known-format"
	openAIKey    = "sk-proj-Tq8Wv2Xy6Za4Bc0De9Fg3Hi7Jk1Lm5No-Pq8Rs2Tu6Vw"
	codexBearer  = "experimental-token-value-no-known-format-123"
	settingsJSON = `{
  "permissions": {"allow": ["Bash(npm test:*)"], "deny": ["Read(./.env)"], "disableBypassPermissionsMode": "disable"},
  "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "~/.claude/hooks/fmt.sh && echo ok > /dev/null"}]}]},
  "env": {"ANTHROPIC_API_KEY": "` + apiKey + `", "HTTPS_PROXY": "http://corp:3128", "MAX_THINKING_TOKENS": "8000", "DEBUG_LEVEL": "2",
          "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"},
  "apiKeyHelper": "~/bin/get-key",
  "model": "opus",
  "skipWebFetchPreflight": false,
  "feedbackSurveyState": {"x": 1}
}
`
	claudeState = `{
  "oauthAccount": {"emailAddress": "me@example.com", "accessToken": "` + oauthToken + `"},
  "primaryApiKey": "` + apiKey + `",
  "userID": "abc",
  "mcpServers": {
    "docs": {"type": "http", "url": "https://mcp.docs.example.com/mcp", "headers": {"Authorization": "` + mcpBearer + `", "X-Client": "bottle"}},
    "events": {"type": "sse", "url": "http://events.example.com:8080/sse"},
    "github": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "` + githubToken + `", "LOG": "info"}},
    "python": {"command": "uvx", "args": ["mcp-server-time"]},
    "broken": {"args": []}
  },
  "projects": {"/home/me/app": {"mcpServers": {"db": {"command": "psql-mcp"}}, "allowedTools": []}}
}
`
)

// claudeHome makes a test home with Claude Code's configuration, a planted
// credentials file, a symlink out of ~/.claude, one inside it, and a pipe.
func claudeHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	write(t, home, ".claude/CLAUDE.md", "Always answer in haiku.\n", 0o644)
	write(t, home, ".claude/settings.json", settingsJSON, 0o644)
	write(t, home, ".claude/.credentials.json", `{"claudeAiOauth":{"accessToken":"`+oauthToken+`","refreshToken":"r"}}`, 0o600)
	write(t, home, ".claude/commands/review.md", "Review the diff.\n", 0o644)
	write(t, home, ".claude/commands/team/deploy.md", "Never deploy.\n", 0o644)
	write(t, home, ".claude/agents/critic.md", "---\nname: critic\n---\nCriticise.\n", 0o644)
	write(t, home, ".claude/skills/pdf/SKILL.md", "---\nname: pdf\n---\n", 0o644)
	write(t, home, ".claude/skills/pdf/extract.sh", "#!/bin/sh\npdftotext \"$1\"\n", 0o755)
	write(t, home, ".claude/output-styles/terse.md", "Be terse.\n", 0o644)
	write(t, home, ".claude/hooks/fmt.sh", "#!/bin/sh\ngofmt -l .\n", 0o755)
	write(t, home, ".claude/projects/-home-me-app/session.jsonl", `{"secret":"`+apiKey+`"}`, 0o600)
	write(t, home, ".claude.json", claudeState, 0o600)
	write(t, home, "notes/outside.md", "outside the tree\n", 0o644)
	must(t, os.Symlink("../../notes/outside.md", filepath.Join(home, ".claude/commands/escape.md")))
	must(t, os.Symlink("../CLAUDE.md", filepath.Join(home, ".claude/commands/same.md")))
	must(t, os.Symlink("/etc", filepath.Join(home, ".claude/commands/etc")))
	must(t, os.Symlink("../agents", filepath.Join(home, ".claude/commands/agents")))
	must(t, syscall.Mkfifo(filepath.Join(home, ".claude/commands/pipe"), 0o644))
	return home
}

func write(t *testing.T, home, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(home, rel)
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func claudeOptions(t *testing.T, home string) Options {
	t.Helper()
	bottle, err := provider.ClaudeSettings(spec.Supervise{})
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Home: home, Provider: spec.ProviderClaude, Setting: spec.UserConfig{Mode: spec.UserConfigAuto},
		BottleSettings: bottle, ReservedEnv: []string{"ANTHROPIC_BASE_URL"},
		CommandExists: func(name string) bool { return name == "npx" },
	}
}

func paths(s *Snapshot) []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Path)
	}
	return out
}

func file(t *testing.T, s *Snapshot, rel string) File {
	t.Helper()
	for _, f := range s.Files {
		if f.Path == rel {
			return f
		}
	}
	t.Fatalf("%s not in the snapshot: %q", rel, paths(s))
	return File{}
}

func leftOut(s *Snapshot, rel, key string) string {
	for _, l := range s.LeftOut {
		if l.Path == "~/"+rel && l.Key == key {
			return l.Reason
		}
	}
	return ""
}

// noCredential fails when any file of s holds one of the planted
// credentials, whatever its name in the snapshot.
func noCredential(t *testing.T, s *Snapshot) {
	t.Helper()
	for _, f := range s.Files {
		for _, c := range []string{oauthToken, apiKey, githubToken, mcpBearer, openAIKey, codexBearer} {
			if bytes.Contains(f.Content, []byte(c)) {
				t.Errorf("%s carries the credential %.16s...", f.Path, c)
			}
		}
		if strings.Contains(f.Path, "credentials") || strings.HasSuffix(f.Path, "auth.json") {
			t.Errorf("a login file is carried: %s", f.Path)
		}
	}
}

func TestClaudeAutoCarriesTheUsualFilesAndNoCredential(t *testing.T) {
	home := claudeHome(t)
	s, err := Collect(claudeOptions(t, home))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".claude.json", ".claude/CLAUDE.md", ".claude/agents/critic.md", ".claude/commands/review.md",
		".claude/commands/same.md", ".claude/commands/team/deploy.md", ".claude/hooks/fmt.sh",
		".claude/output-styles/terse.md", ".claude/settings.json", ".claude/skills/pdf/SKILL.md", ".claude/skills/pdf/extract.sh"}
	if got := paths(s); !slices.Equal(got, want) {
		t.Errorf("carried %q\nwant    %q", got, want)
	}
	noCredential(t, s)
	if f := file(t, s, ".claude/commands/same.md"); string(f.Content) != "Always answer in haiku.\n" {
		t.Errorf("a symlink inside ~/.claude carries its target: %q", f.Content)
	}
	if f := file(t, s, ".claude/skills/pdf/extract.sh"); f.Mode != 0o755 {
		t.Errorf("a script keeps its exec bit: %v", f.Mode)
	}
	if f := file(t, s, ".claude/CLAUDE.md"); f.Mode != 0o644 || f.Source != "~/.claude/CLAUDE.md" || f.Size != len(f.Content) {
		t.Errorf("CLAUDE.md: %+v", f)
	}
	for _, c := range []struct{ rel, key, reason string }{
		{".claude/commands/escape.md", "", "outside ~/.claude"},
		{".claude/commands/etc", "", "outside ~/.claude"},
		{".claude/commands/pipe", "", "not a regular file"},
		{".claude/commands/agents", "", "a symlink to a folder"},
		{".claude/settings.json", "apiKeyHelper", "credential helper"},
		{".claude/settings.json", "env.ANTHROPIC_API_KEY", "a credential"},
		{".claude/settings.json", "env.HTTPS_PROXY", "the bottle sets"},
		{".claude/settings.json", "env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "the bottle sets"},
		{".claude/settings.json", "permissions.disableBypassPermissionsMode", "without permission prompts"},
		{".claude/settings.json", "skipWebFetchPreflight", "not among"},
		{".claude.json", "(everything but mcpServers)", "stay on the host"},
		{".claude.json", "projects./home/me/app.mcpServers", "folder on this host"},
		{".claude.json", "mcpServers.docs.headers.Authorization", "a credential"},
		{".claude.json", "mcpServers.github.env.GITHUB_PERSONAL_ACCESS_TOKEN", "a credential"},
		{".claude.json", "mcpServers.python", "uvx is not in the agent image"},
		{".claude.json", "mcpServers.broken", "neither a command nor a url"},
	} {
		if got := leftOut(s, c.rel, c.key); !strings.Contains(got, c.reason) {
			t.Errorf("left out ~/%s %s: reason %q, want it to say %q", c.rel, c.key, got, c.reason)
		}
	}
	if got := leftOut(s, ".claude/.credentials.json", ""); got != "" {
		t.Errorf("auto does not even look at the login file, yet reported %q", got)
	}
}

func TestClaudeSettingsAreMergedUnderTheBottles(t *testing.T) {
	home := claudeHome(t)
	s, err := Collect(claudeOptions(t, home))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	must(t, json.Unmarshal(file(t, s, ".claude/settings.json").Content, &got))
	if got["model"] != "opus" {
		t.Errorf("model: %v", got["model"])
	}
	env, _ := got["env"].(map[string]any)
	if len(env) != 2 || env["MAX_THINKING_TOKENS"] != "8000" || env["DEBUG_LEVEL"] != "2" {
		t.Errorf("env: %v", env)
	}
	perms, _ := got["permissions"].(map[string]any)
	if perms["allow"] == nil || perms["deny"] == nil || perms["disableBypassPermissionsMode"] != nil {
		t.Errorf("permissions: %v", perms)
	}
	hooks, _ := got["hooks"].(map[string]any)
	if hooks["PostToolUse"] == nil || !strings.Contains(string(file(t, s, ".claude/settings.json").Content), "&& echo ok > /dev/null") {
		t.Errorf("the user's hooks are carried as written: %s", file(t, s, ".claude/settings.json").Content)
	}
	for _, k := range []string{"apiKeyHelper", "skipWebFetchPreflight", "feedbackSurveyState"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s carried", k)
		}
	}

	// A key the bottle sets wins over the user's, unless Claude Code merges
	// it across scopes; so do the bottle's variables.
	o := claudeOptions(t, home)
	o.BottleSettings = []byte(`{"model": "sonnet", "env": {"DEBUG_LEVEL": "0"}, "hooks": {}}`)
	s, err = Collect(o)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	must(t, json.Unmarshal(file(t, s, ".claude/settings.json").Content, &got))
	if _, ok := got["model"]; ok || got["hooks"] == nil {
		t.Errorf("under bottle settings with model and hooks: %v", got)
	}
	if env, _ := got["env"].(map[string]any); env["DEBUG_LEVEL"] != nil || env["MAX_THINKING_TOKENS"] == nil {
		t.Errorf("env under the bottle's: %v", env)
	}
	if !strings.Contains(leftOut(s, ".claude/settings.json", "model"), "the bottle's own settings") {
		t.Errorf("left out: %+v", s.LeftOut)
	}
}

func TestClaudeMCPServers(t *testing.T) {
	s, err := Collect(claudeOptions(t, claudeHome(t)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]MCPServer{}
	for _, m := range s.MCPServers {
		byName[m.Name] = m
	}
	if m := byName["docs"]; !m.Carried || m.Host != "mcp.docs.example.com" || m.Port != 443 || m.Transport != "http" || m.File != "~/.claude.json" {
		t.Errorf("docs: %+v", m)
	}
	if m := byName["events"]; !m.Carried || m.Host != "events.example.com" || m.Port != 8080 || m.Transport != "sse" {
		t.Errorf("events: %+v", m)
	}
	if m := byName["github"]; !m.Carried || m.Command != "npx" || m.Transport != "stdio" {
		t.Errorf("github: %+v", m)
	}
	if m := byName["python"]; m.Carried || !strings.Contains(m.Note, "uvx is not in the agent image") {
		t.Errorf("python: %+v", m)
	}
	if m := byName["broken"]; m.Carried {
		t.Errorf("broken: %+v", m)
	}
	var state map[string]map[string]map[string]any
	must(t, json.Unmarshal(file(t, s, ".claude.json").Content, &state))
	if len(state) != 1 || len(state["mcpServers"]) != 3 || state["mcpServers"]["python"] != nil {
		t.Errorf("carried ~/.claude.json: %s", file(t, s, ".claude.json").Content)
	}
	if h, _ := state["mcpServers"]["docs"]["headers"].(map[string]any); h["X-Client"] != "bottle" || len(h) != 1 {
		t.Errorf("docs headers: %v", h)
	}
	if f := file(t, s, ".claude.json"); f.Mode != 0o600 {
		t.Errorf("~/.claude.json mode %v", f.Mode)
	}

	unreachable := s.UnreachableMCP(func(host string, port int) bool { return host == "mcp.docs.example.com" && port == 443 })
	if len(unreachable) != 1 || unreachable[0].Name != "events" {
		t.Errorf("unreachable: %+v", unreachable)
	}

	// Without a way to look in the image, local servers are carried,
	// unchecked, and say so.
	o := claudeOptions(t, claudeHome(t))
	o.CommandExists = nil
	s, err = Collect(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.MCPServers {
		if m.Name == "python" && (!m.Carried || !strings.Contains(m.Note, "not checked")) {
			t.Errorf("unchecked python: %+v", m)
		}
	}
}

func TestSecretInACarriedFileStopsEverything(t *testing.T) {
	cases := []struct {
		name, rel, content string
		secrets            []Secret
		kind               string
		line               int
	}{
		{"github token in CLAUDE.md", ".claude/CLAUDE.md", "Use this:\n\ttoken " + githubToken + "\n", nil, "a GitHub token", 2},
		{"key in a skill script", ".claude/skills/pdf/extract.sh", "#!/bin/sh\nexport OPENAI_API_KEY=" + openAIKey + "\n", nil, "OpenAI", 2},
		{"private key in an agent", ".claude/agents/critic.md", "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
			"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END OPENSSH PRIVATE KEY-----\n", nil, "private key", 1},
		{"configured secret in a command", ".claude/commands/review.md", "call with corp-internal-secret-value-42\n",
			[]Secret{{Name: "CORP_TOKEN", Value: "corp-internal-secret-value-42"}}, "the secret CORP_TOKEN", 1},
		{"token in an MCP server's args", ".claude.json", `{"mcpServers": {"s": {"command": "npx", "args": ["--token", "` + githubToken + `"]}}}`, nil, "GitHub", 1},
		{"token in a hook command", ".claude/settings.json", `{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "curl -H 'x: ` + apiKey + `' x"}]}]}}`, nil, "Anthropic", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := claudeHome(t)
			write(t, home, c.rel, c.content, 0o644)
			o := claudeOptions(t, home)
			o.Secrets = c.secrets
			s, err := Collect(o)
			var se *SecretError
			if !errors.As(err, &se) || s != nil {
				t.Fatalf("Collect carried %q, error %v; want a SecretError and no snapshot", paths(s), err)
			}
			if se.File != "~/"+c.rel || se.Line != c.line || !strings.Contains(se.Kind, c.kind) {
				t.Errorf("error %+v", se)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, se.File+":") || !strings.Contains(msg, "--no-user-config") || !strings.Contains(msg, "egress.secrets") ||
				!strings.Contains(msg, `agent.user_config: ["!~/`+c.rel+`"]`) {
				t.Errorf("message: %s", msg)
			}
			for _, v := range []string{githubToken, openAIKey, apiKey, "corp-internal-secret-value-42"} {
				if strings.Contains(msg, v) {
					t.Errorf("the error repeats the secret: %s", msg)
				}
			}
		})
	}

	// The same file left out stops nothing.
	home := claudeHome(t)
	write(t, home, ".claude/commands/review.md", githubToken, 0o644)
	o := claudeOptions(t, home)
	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"!~/.claude/commands/review.md"}}
	if _, err := Collect(o); err != nil {
		t.Errorf("excluded file still checked: %v", err)
	}
}

func TestUserConfigList(t *testing.T) {
	home := claudeHome(t)
	o := claudeOptions(t, home)

	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"~/.claude/CLAUDE.md", ".claude/commands/", "!~/.claude/commands/team"}}
	s, err := Collect(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(s); !slices.Equal(got, []string{".claude/CLAUDE.md", ".claude/commands/review.md", ".claude/commands/same.md"}) {
		t.Errorf("list carried %q", got)
	}
	if !strings.Contains(leftOut(s, ".claude/commands/team", ""), "excluded") {
		t.Errorf("left out: %+v", s.LeftOut)
	}

	// Only exclusions: auto without them (globs allowed).
	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"!~/.claude/skills/*", "!~/.claude.json"}}
	if s, err = Collect(o); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths(s) {
		if strings.HasPrefix(p, ".claude/skills/") || p == ".claude.json" {
			t.Errorf("%s carried despite its exclusion", p)
		}
	}
	if !slices.Contains(paths(s), ".claude/CLAUDE.md") || len(s.MCPServers) != 0 {
		t.Errorf("exclusions only: %q %+v", paths(s), s.MCPServers)
	}

	// The whole folder, asked for: still no login file, and a missing
	// entry is reported.
	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"~/.claude", "~/.claude/.credentials.json", "~/.claude/nothing.md"}}
	o.Secrets = nil
	_, err = Collect(o)
	var se *SecretError
	if !errors.As(err, &se) || se.File != "~/.claude/projects/-home-me-app/session.jsonl" {
		t.Errorf("the whole ~/.claude includes the planted transcript with a key: %v", err)
	}
	must(t, os.RemoveAll(filepath.Join(home, ".claude/projects")))
	if s, err = Collect(o); err != nil {
		t.Fatal(err)
	}
	noCredential(t, s)
	if !strings.Contains(leftOut(s, ".claude/.credentials.json", ""), "never carried") ||
		leftOut(s, ".claude/nothing.md", "") != "not found" {
		t.Errorf("left out: %+v", s.LeftOut)
	}

	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"~/.ssh/id_ed25519"}}
	if _, err := Collect(o); err == nil || !strings.Contains(err.Error(), "not part of Claude Code's configuration: list paths under ~/.claude or ~/.claude.json") {
		t.Errorf("a path outside the agent's configuration: %v", err)
	}

	o.Setting = spec.UserConfig{Mode: spec.UserConfigNone}
	if s, err := Collect(o); err != nil || len(s.Files) != 0 {
		t.Errorf("none: %+v %v", s, err)
	}
	o.Setting = spec.UserConfig{Mode: spec.UserConfigAuto}
	o.Provider = spec.ProviderShell
	if s, err := Collect(o); err != nil || len(s.Files) != 0 {
		t.Errorf("shell: %+v %v", s, err)
	}
}

func TestBounds(t *testing.T) {
	home := claudeHome(t)
	o := claudeOptions(t, home)
	o.MaxFiles = 5
	if _, err := Collect(o); err == nil || !strings.Contains(err.Error(), "more than 5 files") || !strings.Contains(err.Error(), "--no-user-config") {
		t.Errorf("file bound: %v", err)
	}
	o = claudeOptions(t, home)
	o.MaxBytes = 600
	if _, err := Collect(o); err == nil || !strings.Contains(err.Error(), "more than 600 bytes") {
		t.Errorf("size bound: %v", err)
	}
	// A huge folder is not read whole to find that out.
	for i := range 50 {
		write(t, home, filepath.Join(".claude/commands/many", strings.Repeat("x", i+1)), "x", 0o644)
	}
	o = claudeOptions(t, home)
	o.MaxFiles = 20
	if _, err := Collect(o); err == nil || !strings.Contains(err.Error(), "reached in ~/.claude/commands") {
		t.Errorf("file bound in a folder: %v", err)
	}
}

func TestAbsentConfigurationCarriesNothing(t *testing.T) {
	o := claudeOptions(t, t.TempDir())
	s, err := Collect(o)
	if err != nil || len(s.Files) != 0 || len(s.LeftOut) != 0 {
		t.Errorf("empty home: %+v %v", s, err)
	}
}

func TestBrokenSettingsAreLeftOut(t *testing.T) {
	home := claudeHome(t)
	write(t, home, ".claude/settings.json", `{"env": {`, 0o644)
	s, err := Collect(claudeOptions(t, home))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(paths(s), ".claude/settings.json") || !strings.Contains(leftOut(s, ".claude/settings.json", ""), "cannot be read as Claude Code's configuration") {
		t.Errorf("broken settings: %q %+v", paths(s), s.LeftOut)
	}
}

const codexTOML = `model = "gpt-5-codex"
forced_login_method = "chatgpt"
approval_policy = "never"
model_auto_compact_token_limit = 200000

[model_providers.corp]
name = "Corp"
base_url = "https://llm.corp.example/v1"
env_key = "CORP_API_KEY"
experimental_bearer_token = "` + codexBearer + `"
http_headers = { "X-Team" = "infra", "Authorization" = "Bearer ` + codexBearer + `" }

[mcp_servers.docs]
url = "https://mcp.docs.example.com/mcp"
bearer_token_env_var = "DOCS_TOKEN"

[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = { GITHUB_TOKEN = "` + githubToken + `", LOG = "info" }

[mcp_servers.local]
command = "/opt/tools/local-mcp"

[projects."/home/me/app"]
trust_level = "trusted"
`

func TestCodex(t *testing.T) {
	home := t.TempDir()
	write(t, home, ".codex/config.toml", codexTOML, 0o600)
	write(t, home, ".codex/AGENTS.md", "Prefer small commits.\n", 0o644)
	write(t, home, ".codex/auth.json", `{"OPENAI_API_KEY": "`+openAIKey+`"}`, 0o600)
	write(t, home, ".codex/prompts/plan.md", "Plan first.\n", 0o644)
	write(t, home, ".codex/sessions/2026/x.jsonl", "{}", 0o644)
	o := Options{Home: home, Provider: spec.ProviderCodex, Setting: spec.UserConfig{Mode: spec.UserConfigAuto},
		CommandExists: func(name string) bool { return name == "npx" }}
	s, err := Collect(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(s); !slices.Equal(got, []string{".codex/AGENTS.md", ".codex/config.toml", ".codex/prompts/plan.md"}) {
		t.Errorf("carried %q", got)
	}
	noCredential(t, s)
	var cfg map[string]any
	must(t, toml.Unmarshal(file(t, s, ".codex/config.toml").Content, &cfg))
	if cfg["model"] != "gpt-5-codex" || cfg["approval_policy"] != "never" || cfg["model_auto_compact_token_limit"] != int64(200000) {
		t.Errorf("config: %v", cfg)
	}
	for _, k := range []string{"forced_login_method", "projects"} {
		if cfg[k] != nil {
			t.Errorf("%s carried", k)
		}
	}
	corp := cfg["model_providers"].(map[string]any)["corp"].(map[string]any)
	if corp["env_key"] != "CORP_API_KEY" || corp["experimental_bearer_token"] != nil || corp["base_url"] == nil {
		t.Errorf("provider: %v", corp)
	}
	if h := corp["http_headers"].(map[string]any); len(h) != 1 || h["X-Team"] != "infra" {
		t.Errorf("headers: %v", h)
	}
	servers := cfg["mcp_servers"].(map[string]any)
	if len(servers) != 2 || servers["local"] != nil || servers["docs"].(map[string]any)["bearer_token_env_var"] != "DOCS_TOKEN" {
		t.Errorf("mcp servers: %v", servers)
	}
	if env := servers["github"].(map[string]any)["env"].(map[string]any); len(env) != 1 || env["LOG"] != "info" {
		t.Errorf("github env: %v", env)
	}
	for _, c := range []struct{ key, reason string }{
		{"forced_login_method", "logs Codex in"},
		{"projects", "folders on this host"},
		{"model_providers.corp.experimental_bearer_token", "a credential"},
		{"model_providers.corp.http_headers.Authorization", "a credential"},
		{"mcp_servers.github.env.GITHUB_TOKEN", "a credential"},
		{"mcp_servers.local", "/opt/tools/local-mcp is not in the agent image"},
	} {
		if got := leftOut(s, ".codex/config.toml", c.key); !strings.Contains(got, c.reason) {
			t.Errorf("left out %s: %q, want %q", c.key, got, c.reason)
		}
	}

	// The remote server is carried and its host must be allowed, as
	// Claude Code's are; the local ones are carried as the image has them.
	byName := map[string]MCPServer{}
	for _, m := range s.MCPServers {
		byName[m.Name] = m
	}
	if m := byName["docs"]; !m.Carried || m.Host != "mcp.docs.example.com" || m.Port != 443 || m.Transport != "http" || m.File != "~/.codex/config.toml" {
		t.Errorf("docs: %+v", m)
	}
	if m := byName["github"]; !m.Carried || m.Command != "npx" || m.Transport != "stdio" {
		t.Errorf("github: %+v", m)
	}
	if m := byName["local"]; m.Carried || m.Command != "/opt/tools/local-mcp" {
		t.Errorf("local: %+v", m)
	}
	if u := s.UnreachableMCP(func(string, int) bool { return false }); len(u) != 1 || u[0].Name != "docs" {
		t.Errorf("unreachable: %+v", u)
	}
	if u := s.UnreachableMCP(func(host string, port int) bool { return host == "mcp.docs.example.com" && port == 443 }); len(u) != 0 {
		t.Errorf("unreachable with docs allowed: %+v", u)
	}

	// An AGENTS.md with a key stops the run, naming it.
	write(t, home, ".codex/AGENTS.md", "key: "+openAIKey+"\n", 0o644)
	var se *SecretError
	if _, err := Collect(o); !errors.As(err, &se) || se.File != "~/.codex/AGENTS.md" {
		t.Errorf("secret in AGENTS.md: %v", err)
	}
}

func TestTar(t *testing.T) {
	s, err := Collect(claudeOptions(t, claudeHome(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Tar()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Tar()
	if !bytes.Equal(b, again) {
		t.Error("the same snapshot packs to different bytes")
	}
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		body, _ := io.ReadAll(tr)
		f := file(t, s, h.Name)
		if h.Typeflag != tar.TypeReg || os.FileMode(h.Mode) != f.Mode || !bytes.Equal(body, f.Content) {
			t.Errorf("%s: %+v", h.Name, h)
		}
		names = append(names, h.Name)
	}
	if !slices.Equal(names, paths(s)) {
		t.Errorf("tar holds %q, want %q", names, paths(s))
	}
	if b, err := (&Snapshot{}).Tar(); b != nil || err != nil {
		t.Errorf("empty snapshot: %d bytes, %v", len(b), err)
	}
}

// TestConfigDir: a configuration moved with CLAUDE_CONFIG_DIR (which then
// holds .claude.json too) is read from there and lands where Claude Code
// looks by default in the bottle.
func TestConfigDir(t *testing.T) {
	home := claudeHome(t)
	moved := filepath.Join(t.TempDir(), "claude-config")
	must(t, os.Rename(filepath.Join(home, ".claude"), moved))
	must(t, os.Rename(filepath.Join(home, ".claude.json"), filepath.Join(moved, ".claude.json")))
	o := claudeOptions(t, home)
	o.ConfigDir = moved
	s, err := Collect(o)
	if err != nil {
		t.Fatal(err)
	}
	noCredential(t, s)
	if f := file(t, s, ".claude/CLAUDE.md"); f.Source != filepath.Join(moved, "CLAUDE.md") {
		t.Errorf("source %s", f.Source)
	}
	if f := file(t, s, ".claude.json"); f.Source != filepath.Join(moved, ".claude.json") {
		t.Errorf("source %s", f.Source)
	}
	if len(s.Files) != 11 {
		t.Errorf("carried %q", paths(s))
	}

	// The whole folder, asked for, still leaves the state file out.
	must(t, os.RemoveAll(filepath.Join(moved, "projects")))
	must(t, os.WriteFile(filepath.Join(moved, ".claude.json.backup"), []byte(claudeState), 0o600))
	o.Setting = spec.UserConfig{Mode: spec.UserConfigList, Paths: []string{"~/.claude"}}
	if s, err = Collect(o); err != nil {
		t.Fatal(err)
	}
	noCredential(t, s)
	for _, p := range paths(s) {
		if strings.HasPrefix(p, ".claude/.claude.json") || strings.HasPrefix(p, ".claude/.credentials") {
			t.Errorf("%s carried", p)
		}
	}
}
