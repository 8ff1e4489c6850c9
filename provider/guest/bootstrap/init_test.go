package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

// bottleRoot is a temp root standing for a bottle: a stage repository made
// from a user's repository by gitstage (as the plugin does), a real git
// gate serving it on loopback, the bottle's token and prompt files, a HOME,
// and the guest environment the plan makes, pointed at all of these.
type bottleRoot struct {
	dir, user, stage, token, prompt, home, bin, ws string
	env                                            []string
}

const testToken = "0123456789abcdef0123456789abcdef"

func newBottleRoot(t *testing.T) *bottleRoot {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the bootstrap drives the real git client, which is not installed: %v (apt-get install git)", err)
	}
	dir := t.TempDir()
	r := &bottleRoot{dir: dir, user: filepath.Join(dir, "user"), stage: filepath.Join(dir, "stage", "gate.git"),
		token: filepath.Join(dir, "run", "token"), prompt: filepath.Join(dir, "run", "prompt"),
		home: filepath.Join(dir, "home"), bin: filepath.Join(dir, "bin"), ws: filepath.Join(dir, "workspace")}
	for _, d := range []string{r.user, filepath.Dir(r.stage), filepath.Dir(r.token), r.home, r.bin} {
		must(t, os.MkdirAll(d, 0o700))
	}
	must(t, os.WriteFile(r.token, []byte(testToken+"\n"), 0o600))
	must(t, os.WriteFile(r.prompt, nil, 0o600))
	userGit := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", r.user, "-c", "user.name=U", "-c", "user.email=u@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	userGit("init", "-q", "-b", "main")
	for i, f := range []string{"README.md", "src/main.go", "src/util.go"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(r.user, f)), 0o755))
		must(t, os.WriteFile(filepath.Join(r.user, f), []byte(strings.Repeat("line\n", i+1)), 0o644))
		userGit("add", f)
		userGit("commit", "-q", "-m", "add "+f)
	}
	must(t, gitstage.Prepare(context.Background(), r.user, r.stage))

	g, err := gate.New(gate.Config{Listen: "127.0.0.1:0", Bottle: "b1", Repo: r.stage, TokenFile: r.token})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; g.Close() })

	// The plan's own guest env (docker backend), moved from the bundle's
	// address and the bottle's paths to this root.
	p := plan.Plan{Slug: "b1", Backend: spec.BackendDocker, Docker: &plan.DockerPlan{},
		Bundle:  plan.BundlePlan{InternalIP: netip.MustParseAddr("10.99.0.2")},
		GitGate: plan.GitGatePlan{Branch: "bottle/b1/work"},
		Agent:   plan.AgentProvision{Env: map[string]string{"LANG": "C.UTF-8"}},
	}.WithEndpoints(plan.HostPorts{})
	repl := strings.NewReplacer("10.99.0.2:8418", ln.Addr().String(), "10.99.0.2", "127.0.0.1",
		plan.GuestTokenFile, r.token, plan.GuestPromptFile, r.prompt)
	for _, kv := range p.Docker.GuestEnv {
		r.env = append(r.env, repl.Replace(kv))
	}
	r.env = append(r.env, "HOME="+r.home, "PATH="+r.bin+string(os.PathListSeparator)+os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1")
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeAgent puts an executable named name on the root's PATH; script is
// its body (the tests capture the exec, so the agents themselves need not
// run, except codex's login).
func (r *bottleRoot) fakeAgent(t *testing.T, name, script string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(r.bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755))
}

type execed struct {
	dir, path string
	argv, env []string
}

// run runs the bootstrap with the plugin's own command line for the
// provider, the workspace moved into the root.
func (r *bottleRoot) run(t *testing.T, a plan.AgentProvision, env []string) (execed, string, error) {
	t.Helper()
	args := provider.Bootstrap(a)[2:]
	i := slices.Index(args, "/workspace")
	args[i] = r.ws
	var got execed
	var stderr bytes.Buffer
	err := bootstrap(context.Background(), args, env, &stderr, func(dir, path string, argv, env []string) error {
		got = execed{dir, path, argv, env}
		return nil
	})
	return got, stderr.String(), err
}

func (r *bottleRoot) git(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.ws}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func envValue(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if key, v, ok := strings.Cut(env[i], "="); ok && key == k {
			return v
		}
	}
	return ""
}

// TestInitClaude bootstraps a Claude Code bottle from a real gate, then
// does what the agent would: commit and push its branch.
func TestInitClaude(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "claude", "exit 0")
	must(t, os.WriteFile(r.prompt, []byte("Keep commits small.\n"), 0o600))
	env := append(slices.Clone(r.env), "ANTHROPIC_API_KEY="+provider.AnthropicAPIKeyPlaceholder)
	claude, _ := provider.Get("claude")
	a := plan.AgentProvision{Provider: "claude", Command: claude.Defaults.Command, PromptMode: claude.PromptMode}

	got, stderr, err := r.run(t, a, env)
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, stderr)
	}
	if got.dir != r.ws || got.path != filepath.Join(r.bin, "claude") ||
		!slices.Equal(got.argv, []string{"claude", "--dangerously-skip-permissions", "--append-system-prompt-file", r.prompt}) {
		t.Errorf("exec %+v", got)
	}
	// The token is in the agent's proxy URLs, and only there.
	if v := envValue(got.env, "HTTPS_PROXY"); v != "http://bottle:"+testToken+"@127.0.0.1:3128" || envValue(got.env, "http_proxy") != v {
		t.Errorf("HTTPS_PROXY=%q", v)
	}
	for _, kv := range env {
		if strings.Contains(kv, testToken) {
			t.Errorf("the stored environment has the token: %s", kv)
		}
	}
	for _, kv := range got.env {
		if strings.Contains(kv, testToken) && !strings.Contains(strings.ToLower(kv), "_proxy=") {
			t.Errorf("the token leaked into %s", kv)
		}
	}
	if envValue(got.env, "LANG") != "C.UTF-8" || envValue(got.env, "NO_PROXY") != "127.0.0.1" {
		t.Errorf("env changed: %q", got.env)
	}

	// The workspace: the user's files, on the bottle's branch, tracking it
	// on the gate.
	if b, err := os.ReadFile(filepath.Join(r.ws, "src/util.go")); err != nil || string(b) != "line\nline\nline\n" {
		t.Errorf("workspace file: %q %v", b, err)
	}
	if br, _ := r.git(t, got.env, "rev-parse", "--abbrev-ref", "HEAD"); br != "bottle/b1/work" {
		t.Errorf("branch %q", br)
	}
	if n, _ := r.git(t, got.env, "rev-list", "--count", "HEAD"); n != "3" {
		t.Errorf("history: %s commits", n)
	}

	// Claude Code's home: onboarding done, workspace trusted, the
	// placeholder key accepted, no secret.
	b, err := os.ReadFile(filepath.Join(r.home, ".claude.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		HasCompletedOnboarding bool
		Projects               map[string]struct{ HasTrustDialogAccepted bool }
		CustomAPIKeyResponses  struct{ Approved []string } `json:"customApiKeyResponses"`
	}
	must(t, json.Unmarshal(b, &cfg))
	ph := provider.AnthropicAPIKeyPlaceholder
	if !cfg.HasCompletedOnboarding || !cfg.Projects[r.ws].HasTrustDialogAccepted ||
		!slices.Equal(cfg.CustomAPIKeyResponses.Approved, []string{ph[len(ph)-20:]}) {
		t.Errorf(".claude.json: %s", b)
	}
	if st, _ := os.Stat(filepath.Join(r.home, ".claude.json")); st.Mode().Perm() != 0o600 {
		t.Errorf(".claude.json mode %v", st.Mode())
	}

	// The agent commits and pushes with a plain `git push`, through the
	// gate's credential helper; main stays out of reach.
	must(t, os.WriteFile(filepath.Join(r.ws, "NEW.md"), []byte("agent\n"), 0o644))
	if out, err := r.git(t, got.env, "add", "NEW.md"); err != nil {
		t.Fatal(out)
	}
	if out, err := r.git(t, got.env, "commit", "-q", "-m", "agent work"); err != nil {
		t.Fatalf("commit: %s", out)
	}
	if out, err := r.git(t, got.env, "push", "--quiet"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	head, _ := r.git(t, got.env, "rev-parse", "HEAD")
	out, err := exec.Command("git", "--git-dir", r.stage, "rev-parse", "refs/heads/bottle/b1/work").Output()
	if err != nil || strings.TrimSpace(string(out)) != head {
		t.Errorf("the gate's branch: %q %v, want %s", out, err, head)
	}
	if out, err := r.git(t, got.env, "push", "origin", "HEAD:refs/heads/main"); err == nil {
		t.Errorf("push to main accepted: %s", out)
	}

	// Started again on the same disk (a restarted bottle): the work is
	// kept, and an empty prompt adds nothing.
	must(t, os.WriteFile(r.prompt, nil, 0o600))
	again, stderr, err := r.run(t, a, env)
	if err != nil {
		t.Fatalf("second bootstrap: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "keeping the workspace") || !slices.Equal(again.argv, []string{"claude", "--dangerously-skip-permissions"}) {
		t.Errorf("second run: %q %q", stderr, again.argv)
	}
	if h, _ := r.git(t, got.env, "rev-parse", "HEAD"); h != head {
		t.Errorf("work lost: HEAD %s, want %s", h, head)
	}
}

// TestInitContinuesABranch: a new bottle disk whose branch exists on the
// gate already (pushed by an earlier run) goes on from it.
func TestInitContinuesABranch(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "sh-agent", "exit 0")
	a := plan.AgentProvision{Provider: "shell", Command: []string{"sh-agent"}}
	got, stderr, err := r.run(t, a, r.env)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	must(t, os.WriteFile(filepath.Join(r.ws, "x"), []byte("x"), 0o644))
	r.git(t, got.env, "add", "x")
	r.git(t, got.env, "commit", "-q", "-m", "x")
	if out, err := r.git(t, got.env, "push", "--quiet"); err != nil {
		t.Fatalf("push: %s", out)
	}
	head, _ := r.git(t, got.env, "rev-parse", "HEAD")
	must(t, os.RemoveAll(r.ws))
	got, stderr, err = r.run(t, a, r.env)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if h, _ := r.git(t, got.env, "rev-parse", "HEAD"); h != head {
		t.Errorf("HEAD %s, want the pushed %s", h, head)
	}
	if up, _ := r.git(t, got.env, "rev-parse", "--abbrev-ref", "@{upstream}"); up != "origin/bottle/b1/work" {
		t.Errorf("upstream %q", up)
	}
}

// TestInitCodex: the prompt goes to Codex's AGENTS.md and Codex is logged
// in with the placeholder through `codex login --with-api-key`.
func TestInitCodex(t *testing.T) {
	r := newBottleRoot(t)
	record := filepath.Join(r.dir, "codex-login")
	r.fakeAgent(t, "codex", `echo "$*" > `+record+`; cat >> `+record+`; mkdir -p "$CODEX_HOME"; echo '{}' > "$CODEX_HOME/auth.json"`)
	must(t, os.WriteFile(r.prompt, []byte("Answer in French."), 0o600))
	env := append(slices.Clone(r.env), "OPENAI_API_KEY="+provider.OpenAIAPIKeyPlaceholder)
	codex, _ := provider.Get("codex")
	a := plan.AgentProvision{Provider: "codex", Command: codex.Defaults.Command, PromptMode: codex.PromptMode}
	got, stderr, err := r.run(t, a, env)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !slices.Equal(got.argv, codex.Defaults.Command) {
		t.Errorf("argv %q", got.argv)
	}
	if b, err := os.ReadFile(filepath.Join(r.home, ".codex", "AGENTS.md")); err != nil || string(b) != "Answer in French." {
		t.Errorf("AGENTS.md: %q %v", b, err)
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != "login --with-api-key\n"+provider.OpenAIAPIKeyPlaceholder+"\n" {
		t.Errorf("codex login: %q %v", b, err)
	}
	// Logged in already: not again.
	os.Remove(record)
	if _, _, err := r.run(t, a, env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(record); err == nil {
		t.Error("codex logged in twice")
	}

	// A command that only wraps codex (a script) gets it logged in too.
	must(t, os.RemoveAll(filepath.Join(r.home, ".codex")))
	wrapped := plan.AgentProvision{Provider: "codex", Command: []string{"sh", "-c", "codex exec hi"}, PromptMode: codex.PromptMode}
	if _, stderr, err := r.run(t, wrapped, env); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(record); err != nil || string(b) != "login --with-api-key\n"+provider.OpenAIAPIKeyPlaceholder+"\n" {
		t.Errorf("codex login under sh -c: %q %v", b, err)
	}
}

func TestInitRefuses(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "claude", "exit 0")
	a := plan.AgentProvision{Provider: "claude", Command: []string{"claude"}, PromptMode: provider.PromptAppendSystemPromptFile}
	without := func(k string) []string {
		return slices.DeleteFunc(slices.Clone(r.env), func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	}
	with := func(kv ...string) []string { return append(slices.Clone(r.env), kv...) }
	emptyToken := filepath.Join(r.dir, "empty-token")
	must(t, os.WriteFile(emptyToken, nil, 0o600))
	for _, tc := range []struct {
		name string
		a    plan.AgentProvision
		env  []string
		pre  func()
		want string
	}{
		{"no gate", a, without(guest.EnvGateURL), nil, guest.EnvGateURL + " is not set"},
		{"no branch", a, without(guest.EnvBranch), nil, guest.EnvBranch + " is not set"},
		{"no token file", a, with(guest.EnvTokenFile + "=/nonexistent"), nil, "reading the bottle token"},
		{"empty token", a, with(guest.EnvTokenFile + "=" + emptyToken), nil, "is empty"},
		// The gate read its token at start; git's helper now reads another.
		{"wrong token", a, r.env, func() { os.WriteFile(r.token, []byte("wrong"), 0o600) }, "cloning from the git gate"},
		{"unknown prompt mode", plan.AgentProvision{Provider: "claude", Command: []string{"claude"}, PromptMode: "argument"}, r.env, nil, "prompt mode"},
		{"no command", plan.AgentProvision{Provider: "claude"}, r.env, nil, "usage"},
		{"agent missing", plan.AgentProvision{Provider: "shell", Command: []string{"nosuchagent"}}, r.env, nil, "not in the image"},
		{"not empty", a, r.env, func() { os.MkdirAll(r.ws, 0o755); os.WriteFile(filepath.Join(r.ws, "f"), nil, 0o644) }, "not empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(r.ws)
			if tc.pre != nil {
				tc.pre()
			}
			defer os.WriteFile(r.token, []byte(testToken), 0o600)
			_, stderr, err := r.run(t, tc.a, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q\n%s", err, tc.want, stderr)
			}
		})
	}
	if err := bootstrap(context.Background(), []string{"--workspace", "relative", "--", "sh"}, r.env, io.Discard, nil); err == nil {
		t.Error("relative workspace accepted")
	}
}
