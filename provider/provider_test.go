package provider

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

func get(t *testing.T, name string) Provider {
	t.Helper()
	p, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// instructions joins continued lines and returns each instruction's
// keyword and text, comments dropped.
func instructions(df string) [][2]string {
	var out [][2]string
	var cur string
	for _, line := range strings.Split(df, "\n") {
		t := strings.TrimSpace(line)
		if cur == "" && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		cur += t
		kw, rest, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{kw, rest})
		cur = ""
	}
	return out
}

func TestDockerfiles(t *testing.T) {
	hex128 := regexp.MustCompile(`^[0-9a-f]{128}$`)
	for _, s := range []string{claudeCodeSHA512Amd64, claudeCodeSHA512Arm64, codexSHA512Amd64, codexSHA512Arm64} {
		if !hex128.MatchString(s) {
			t.Errorf("pinned sha512 %q is not 128 hex digits", s)
		}
	}
	if !regexp.MustCompile(`^debian:bookworm-slim@sha256:[0-9a-f]{64}$`).MatchString(BaseImage) {
		t.Errorf("base image %q is not pinned by digest", BaseImage)
	}
	for _, tc := range []struct {
		name    string
		want    []string // instruction keywords in order
		has     []string
		hasNot  []string
		command string
	}{
		{"claude", []string{"ARG", "FROM", "RUN", "ARG", "ARG", "ARG", "ARG", "RUN", "RUN", "ENV", "USER", "WORKDIR", "CMD"},
			[]string{"ARG CLAUDE_CODE_VERSION=" + ClaudeCodeVersion, "CLAUDE_CODE_SHA512_AMD64=" + claudeCodeSHA512Amd64,
				"CLAUDE_CODE_SHA512_ARM64=" + claudeCodeSHA512Arm64, "sha512sum -c", "@anthropic-ai/claude-code-$pkg/-/claude-code-$pkg-$CLAUDE_CODE_VERSION.tgz",
				"claude --version", "DISABLE_AUTOUPDATER=1"}, []string{"codex"}, `["claude"]`},
		{"codex", []string{"ARG", "FROM", "RUN", "ARG", "ARG", "ARG", "ARG", "RUN", "RUN", "ENV", "USER", "WORKDIR", "CMD"},
			[]string{"ARG CODEX_VERSION=" + CodexVersion, "CODEX_SHA512_AMD64=" + codexSHA512Amd64, "CODEX_SHA512_ARM64=" + codexSHA512Arm64,
				"sha512sum -c", "@openai/codex/-/codex-$CODEX_VERSION-$pkg.tgz", "codex --version"}, []string{"claude", "DISABLE_AUTOUPDATER"}, `["codex"]`},
		{"shell", []string{"ARG", "FROM", "RUN", "RUN", "ENV", "USER", "WORKDIR", "CMD"},
			nil, []string{"claude", "codex", "NPM_REGISTRY", "sha512sum"}, `["bash"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := get(t, tc.name).Dockerfile()
			if err != nil {
				t.Fatal(err)
			}
			df := string(b)
			ins := instructions(df)
			var kws []string
			for _, in := range ins {
				kws = append(kws, in[0])
			}
			if !slices.Equal(kws, tc.want) {
				t.Fatalf("instructions %v, want %v\n%s", kws, tc.want, df)
			}
			if ins[0][1] != BuildArgBaseImage+"="+BaseImage || ins[1][1] != "${"+BuildArgBaseImage+"}" {
				t.Errorf("base: %q %q", ins[0][1], ins[1][1])
			}
			if !strings.Contains(ins[2][1], "apt-get install") || !strings.Contains(ins[2][1], " git ") || !strings.Contains(ins[2][1], "ca-certificates") {
				t.Errorf("packages: %s", ins[2][1])
			}
			last := ins[len(ins)-4:]
			if !strings.HasPrefix(last[0][1], "HOME=/home/agent") || last[1][1] != "1000:1000" || last[2][1] != "/workspace" || last[3][1] != tc.command {
				t.Errorf("tail %q", last)
			}
			for _, s := range tc.has {
				if !strings.Contains(df, s) {
					t.Errorf("missing %q", s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(df, s) {
					t.Errorf("has %q", s)
				}
			}
			for _, secret := range []string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY", "placeholder"} {
				if strings.Contains(df, secret) {
					t.Errorf("the Dockerfile mentions %s", secret)
				}
			}
			if strings.Contains(df, "{{") || strings.Contains(df, "<no value>") {
				t.Errorf("template residue:\n%s", df)
			}
		})
	}
}

func TestGet(t *testing.T) {
	if p := get(t, ""); p.Name != spec.ProviderClaude {
		t.Errorf("default provider %q", p.Name)
	}
	if _, err := Get("cursor"); err == nil || !strings.Contains(err.Error(), "claude, codex, shell") {
		t.Errorf("unknown provider: %v", err)
	}
	for _, name := range spec.ProviderNames() {
		p := get(t, name)
		pp := p.Plan()
		if pp.Name != name || pp.PromptMode != p.PromptMode || pp.Dockerfile != "builtin:"+name {
			t.Errorf("plan of %s: %+v", name, pp)
		}
	}
}

// TestLaunch: how the agent starts in the bottle for a prompt, each
// provider's prompt mode applied by the bootstrap (guest.Apply).
func TestLaunch(t *testing.T) {
	claudeCmd := []string{"claude", "--dangerously-skip-permissions"}
	for _, tc := range []struct {
		provider, prompt string
		argv             []string
		files            map[string]string
	}{
		{"claude", "", claudeCmd, nil},
		{"claude", " \n\t", claudeCmd, nil},
		{"claude", "Fix the tests.", append(slices.Clone(claudeCmd), "--append-system-prompt-file", plan.GuestPromptFile), nil},
		{"codex", "", []string{"codex"}, nil},
		{"codex", "Fix the tests.", []string{"codex"}, map[string]string{"/home/agent/.codex/AGENTS.md": "Fix the tests."}},
		{"shell", "Fix the tests.", []string{"sh"}, nil},
	} {
		p := get(t, tc.provider)
		cmd := p.Defaults.Command
		if tc.provider == "codex" {
			cmd = []string{"codex"}
		}
		l, err := guest.Apply(p.PromptMode, cmd, plan.GuestPromptFile, []byte(tc.prompt), func(k string) string {
			if k == "HOME" {
				return "/home/agent"
			}
			return ""
		})
		if err != nil {
			t.Fatalf("%s %q: %v", tc.provider, tc.prompt, err)
		}
		if !slices.Equal(l.Argv, tc.argv) {
			t.Errorf("%s %q: argv %q, want %q", tc.provider, tc.prompt, l.Argv, tc.argv)
		}
		if len(l.Files) != len(tc.files) {
			t.Errorf("%s %q: files %v", tc.provider, tc.prompt, l.Files)
		}
		for path, want := range tc.files {
			if string(l.Files[path]) != want {
				t.Errorf("%s %q: %s = %q", tc.provider, tc.prompt, path, l.Files[path])
			}
		}
	}
}

func TestBootstrap(t *testing.T) {
	a := plan.AgentProvision{Provider: "claude", Command: []string{"claude", "--dangerously-skip-permissions", "-c"}, PromptMode: PromptAppendSystemPromptFile}
	got := Bootstrap(a)
	want := []string{guest.HelperPath, "init", "--provider", "claude", "--prompt-mode", "append-system-prompt-file",
		"--workspace", "/workspace", "--", "claude", "--dangerously-skip-permissions", "-c"}
	if !slices.Equal(got, want) {
		t.Errorf("bootstrap %q\nwant %q", got, want)
	}
	if got := Bootstrap(plan.AgentProvision{Provider: "shell", Command: []string{"sh"}}); got[5] != "none" {
		t.Errorf("no prompt mode: %q", got)
	}
}

// resolved is what the plugin's loadSpec makes of an empty bottle.yaml.
func resolved(t *testing.T, name string) spec.Spec {
	t.Helper()
	return spec.Spec{Agent: spec.Agent{Provider: name}}.Resolve(get(t, name).Defaults)
}

func TestEgressAndSecrets(t *testing.T) {
	c := resolved(t, "claude")
	if len(c.Egress.Allow) != 1 || c.Egress.Allow[0].Host != "api.anthropic.com" || !slices.Equal(c.Egress.Allow[0].Ports, []int{443}) {
		t.Errorf("claude allow %+v", c.Egress.Allow)
	}
	if !slices.Equal(c.Agent.Command, []string{"claude", "--dangerously-skip-permissions"}) {
		t.Errorf("claude command %q", c.Agent.Command)
	}
	if len(c.Egress.Secrets) != 2 {
		t.Fatalf("claude secrets %+v", c.Egress.Secrets)
	}
	key, oauth := c.Egress.Secrets[0], c.Egress.Secrets[1]
	if key.Header != "x-api-key" || key.FromEnv != "ANTHROPIC_API_KEY" || key.Placeholder != AnthropicAPIKeyPlaceholder || !key.Optional {
		t.Errorf("api key secret %+v", key)
	}
	if oauth.Header != "Authorization" || oauth.FromEnv != "CLAUDE_CODE_OAUTH_TOKEN" || !strings.HasPrefix(oauth.Placeholder, "sk-ant-oat") || !oauth.Optional {
		t.Errorf("oauth secret %+v", oauth)
	}
	// The agent sends "Bearer <placeholder>"; the proxy replaces the
	// placeholder with Format applied to the value, so Format must be the
	// bare value or the header would read "Bearer Bearer <token>".
	for _, s := range append(c.Egress.Secrets, resolved(t, "codex").Egress.Secrets...) {
		if s.Format != "{value}" || s.Host == "" || strings.HasPrefix(s.Host, "*.") {
			t.Errorf("secret %+v", s)
		}
	}
	if c.Agent.Env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] != "1" {
		t.Errorf("claude env %v", c.Agent.Env)
	}

	x := resolved(t, "codex")
	if len(x.Egress.Allow) != 1 || x.Egress.Allow[0].Host != "api.openai.com" || len(x.Egress.Secrets) != 1 ||
		x.Egress.Secrets[0].Header != "Authorization" || x.Egress.Secrets[0].FromEnv != "OPENAI_API_KEY" || x.Egress.Secrets[0].Optional {
		t.Errorf("codex egress %+v", x.Egress)
	}
	if x.Agent.Env["CODEX_CA_CERTIFICATE"] != plan.GuestCABundle {
		t.Errorf("codex env %v", x.Agent.Env)
	}
	s := resolved(t, "shell")
	if len(s.Egress.Allow) != 0 || len(s.Egress.Secrets) != 0 || len(s.Agent.Env) != 0 || !slices.Equal(s.Agent.Command, []string{"sh"}) {
		t.Errorf("shell has defaults: %+v %+v", s.Egress, s.Agent)
	}
	// A user's own rule for the host wins over the provider's.
	own := spec.Spec{Egress: spec.Egress{Allow: []spec.Rule{{Host: "api.anthropic.com", Ports: []int{8443}}}}}.Resolve(get(t, "claude").Defaults)
	if len(own.Egress.Allow) != 1 || own.Egress.Allow[0].Ports[0] != 8443 {
		t.Errorf("user rule lost: %+v", own.Egress.Allow)
	}
}

func TestPlaceholderEnv(t *testing.T) {
	secrets := resolved(t, "claude").Egress.Secrets
	secrets = append(secrets,
		spec.Secret{Host: "x.example", Header: "X", FromFile: "/k", Placeholder: "ph-file"},
		spec.Secret{Host: "y.example", Header: "Y", FromEnv: "Y_TOKEN"})
	presentOnly := func(names ...string) SecretPresent {
		return func(s spec.Secret) bool { return s.FromFile != "" || slices.Contains(names, s.FromEnv) }
	}
	for _, tc := range []struct {
		present []string
		want    map[string]string
	}{
		{nil, map[string]string{}},
		{[]string{"ANTHROPIC_API_KEY"}, map[string]string{"ANTHROPIC_API_KEY": AnthropicAPIKeyPlaceholder}},
		{[]string{"CLAUDE_CODE_OAUTH_TOKEN", "Y_TOKEN"}, map[string]string{"CLAUDE_CODE_OAUTH_TOKEN": ClaudeOAuthPlaceholder}},
		{[]string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"}, map[string]string{
			"ANTHROPIC_API_KEY": AnthropicAPIKeyPlaceholder, "CLAUDE_CODE_OAUTH_TOKEN": ClaudeOAuthPlaceholder}},
	} {
		got := PlaceholderEnv(secrets, presentOnly(tc.present...))
		if len(got) != len(tc.want) {
			t.Errorf("present %v: %v, want %v", tc.present, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("present %v: %s=%q, want %q", tc.present, k, got[k], v)
			}
		}
	}

	t.Setenv("BOTTLE_TEST_SET", "v")
	t.Setenv("BOTTLE_TEST_BLANK", " ")
	for _, tc := range []struct {
		s    spec.Secret
		want bool
	}{
		{spec.Secret{FromEnv: "BOTTLE_TEST_SET"}, true},
		{spec.Secret{FromEnv: "BOTTLE_TEST_BLANK"}, false},
		{spec.Secret{FromEnv: "BOTTLE_TEST_UNSET_0"}, false},
		{spec.Secret{FromFile: "provider.go"}, true},
		{spec.Secret{FromFile: "/nonexistent/key"}, false},
		{spec.Secret{}, false},
	} {
		if got := HostSecretPresent(tc.s); got != tc.want {
			t.Errorf("HostSecretPresent(%+v) = %v", tc.s, got)
		}
	}

	claude := get(t, "claude")
	if err := claude.CheckCredentials(secrets, presentOnly()); err == nil ||
		!strings.Contains(err.Error(), "ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN") {
		t.Errorf("no credential: %v", err)
	}
	if err := claude.CheckCredentials(secrets, presentOnly("CLAUDE_CODE_OAUTH_TOKEN")); err != nil {
		t.Errorf("oauth token present: %v", err)
	}
	if err := get(t, "shell").CheckCredentials(nil, presentOnly()); err != nil {
		t.Errorf("shell: %v", err)
	}
}

type settingsDoc struct {
	Hooks map[string][]struct {
		Matcher string `json:"matcher"`
		Hooks   []struct {
			Type, Command, If, OnFailure string
			Timeout                      int
		} `json:"hooks"`
	} `json:"hooks"`
	SkipDangerous bool `json:"skipDangerousModePermissionPrompt"`
	SkipPreflight bool `json:"skipWebFetchPreflight"`
}

func settingsOf(t *testing.T, sup spec.Supervise) settingsDoc {
	t.Helper()
	files, err := get(t, "claude").BottleFiles(spec.Spec{Supervise: sup})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "/etc/claude-code/managed-settings.json" || files[0].Mode != 0o644 {
		t.Fatalf("files %+v", files)
	}
	var d settingsDoc
	if err := json.Unmarshal(files[0].Content, &d); err != nil {
		t.Fatalf("settings are not JSON: %v\n%s", err, files[0].Content)
	}
	return d
}

func TestClaudeSettings(t *testing.T) {
	d := settingsOf(t, spec.Supervise{})
	if !d.SkipDangerous || !d.SkipPreflight {
		t.Errorf("settings %+v", d)
	}
	for _, e := range []string{"SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure", "Notification", "Stop", "SessionEnd"} {
		ms := d.Hooks[e]
		if len(ms) != 1 || len(ms[0].Hooks) != 1 || ms[0].Hooks[0].Command != guest.HelperPath+" hook" ||
			ms[0].Hooks[0].Type != "command" || ms[0].Hooks[0].Timeout <= 0 || ms[0].Hooks[0].OnFailure != "" {
			t.Errorf("%s: %+v", e, ms)
		}
	}
	if _, ok := d.Hooks["PreToolUse"]; ok {
		t.Errorf("a PreToolUse hook without tool approvals: %+v", d.Hooks["PreToolUse"])
	}
	// Other approvals do not add it either.
	if d := settingsOf(t, spec.Supervise{Approvals: []string{"egress", "push"}, Tools: []string{"Bash"}}); d.Hooks["PreToolUse"] != nil {
		t.Errorf("PreToolUse hook without the tool kind: %+v", d.Hooks["PreToolUse"])
	}

	timeout := spec.Duration(2 * time.Minute)
	d = settingsOf(t, spec.Supervise{Approvals: []string{"tool"}, Timeout: &timeout, Tools: []string{"Bash(git push *)", "Edit|Write", "mcp__.*"}})
	pre := d.Hooks["PreToolUse"]
	if len(pre) != 3 {
		t.Fatalf("PreToolUse %+v", pre)
	}
	for i, want := range [][2]string{{"Bash", "Bash(git push *)"}, {"Edit|Write", ""}, {"mcp__.*", ""}} {
		h := pre[i].Hooks[0]
		if pre[i].Matcher != want[0] || h.If != want[1] || h.OnFailure != "block" ||
			h.Command != guest.HelperPath+" hook --approve --wait 2m30s" || h.Timeout != 180 {
			t.Errorf("PreToolUse[%d] %+v", i, pre[i])
		}
	}
	// No list: every tool call asks.
	d = settingsOf(t, spec.Supervise{Approvals: []string{"tool"}})
	if pre := d.Hooks["PreToolUse"]; len(pre) != 1 || pre[0].Matcher != "*" || pre[0].Hooks[0].Command != guest.HelperPath+" hook --approve --wait 5m30s" {
		t.Errorf("all tools: %+v", pre)
	}
	for _, bad := range []string{"", "Bash git", "Bash(", "rm -rf"} {
		if _, err := get(t, "claude").BottleFiles(spec.Spec{Supervise: spec.Supervise{Approvals: []string{"tool"}, Tools: []string{bad}}}); err == nil {
			t.Errorf("tool pattern %q accepted", bad)
		}
	}
	for _, name := range []string{"codex", "shell"} {
		if f, err := get(t, name).BottleFiles(spec.Spec{Supervise: spec.Supervise{Approvals: []string{"tool"}}}); err != nil || f != nil {
			t.Errorf("%s files %v %v", name, f, err)
		}
	}
}
