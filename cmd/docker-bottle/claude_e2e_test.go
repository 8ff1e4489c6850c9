//go:build e2e

package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/provider"
)

// TestClaudeInBottle is the user's main job on the docker backend, through
// the real CLI: `docker bottle run` in a repository with the claude
// provider, its built-in image built on a local Debian base (nothing can be
// pulled), and a real Claude Code session in it. The model is a stand-in
// api.anthropic.com (a TLS server the test controls, on the bottle's
// network, allowed by a private rule) that answers only requests carrying
// the real key, which it checks by hash, and scripts one Bash tool call.
// So the test sees, end to end: ANTHROPIC_API_KEY in the bottle is the
// placeholder and the proxy adds the real key; the managed settings' hooks
// run in a real session: the PreToolUse hook holds the Bash call until
// `docker bottle approve`, the tool then runs in the bottle and its output
// reaches the model, and the session's events reach the supervisor. The
// rules name commands (Bash(echo *), Bash(touch *)): a call no rule names
// runs unasked, and a compound command two rules name is asked once. A
// stand-in npm registry is reached through the allowlist as well, read-only
// (a GET/HEAD rule: a publish is refused). The real key appears nowhere in
// the bottle's output.
func TestClaudeInBottle(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("cl-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-ant-api03-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))

	ca, caFile := standInCA(t)
	apiCerts := standInCert(t, ca, "api.anthropic.com", filepath.Join(t.TempDir(), "api"))
	npmCerts := standInCert(t, ca, "registry.npmjs.org", filepath.Join(t.TempDir(), "npm"))
	const (
		// No rule names this one: it runs unasked.
		unaskedCommand = `pwd`
		allowedCommand = `echo "tool ran as $(id -un) on branch $(git branch --show-current)"`
		deniedCommand  = `touch denied-call-ran; echo "denied call ran as $(id -un)"`
	)
	spec := standInClaudeSpec(base, caFile, `claude --version
env | grep '^ANTHROPIC_API_KEY='
`+standInAPIUp(`x-api-key: $ANTHROPIC_API_KEY`)+`claude -p 'Run the check.' --dangerously-skip-permissions </dev/null
echo "claude exit: $?"
test -e denied-call-ran && echo "denied call left its file" || echo "no trace of the denied call"
curl -fsS --max-time 20 https://registry.npmjs.org/bottle-standin-pkg | grep -o '"tarball":"[^"]*"'
curl -fsS --max-time 20 https://registry.npmjs.org/bottle-standin-pkg/-/bottle-standin-pkg-1.0.0.tgz | tar -xzO package/index.js
curl -sS --max-time 20 -X PUT -d '{}' https://registry.npmjs.org/bottle-standin-pkg | head -c 300
curl -sS --max-time 20 http://example.org/ | head -c 300
`, `    - host: registry.npmjs.org
      ports: [443]
      private: true
      methods: [GET, HEAD]
supervise:
  approvals: [tool]
  tools: ["Bash(echo *)", "Bash(touch *)"]
  timeout: 4m
`)
	run := startAgentRun(t, eng, cfg, repo, name, spec, []string{"ANTHROPIC_API_KEY=" + realKey, "CLAUDE_CODE_OAUTH_TOKEN="}, nil)
	var apiHost testenv.Upstream
	run.whenBundleRuns(func(network string, labels map[string]string) {
		apiHost = testenv.StartStandIn(t, eng, network, "api.anthropic.com", apiCerts, labels, "anthropic",
			"--key-sha256", hex.EncodeToString(sum[:]), "--tool-command", unaskedCommand, "--tool-command", allowedCommand, "--tool-command", deniedCommand)
		testenv.StartStandIn(t, eng, network, "registry.npmjs.org", npmCerts, labels, "npm")
	})

	// The Bash calls the rules name wait for a human: the first is
	// approved, the second denied. The one no rule names is not held.
	for i, c := range []struct{ verb, command string }{{"approve", allowedCommand}, {"deny", deniedCommand}} {
		var held api.Approval
		for deadline := time.Now().Add(8 * time.Minute); held.ID == "" && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			run.ended()
			r := docker(t, cfg, nil, "bottle", "approvals", name, "--format", "json")
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				var a api.Approval
				if json.Unmarshal([]byte(line), &a) != nil || a.Kind != approval.Tool {
					continue
				}
				if a.Subject == "Bash("+unaskedCommand+")" {
					t.Errorf("a call no rule names was held: %+v", a)
					docker(t, cfg, nil, "bottle", "approve", name, a.ID)
					continue
				}
				held = a
			}
		}
		if held.ID == "" {
			t.Fatalf("Bash call %d was never held for approval%s", i+1, run.explain(apiHost))
		}
		if held.Subject != "Bash("+c.command+")" {
			t.Errorf("held approval %d: %+v, want the subject Bash(%s)", i+1, held, c.command)
		}
		if r := docker(t, cfg, nil, "bottle", c.verb, name, held.ID); r.code != 0 {
			t.Fatalf("%s: exit %d %s", c.verb, r.code, r.stderr)
		}
	}

	if err := run.wait(10 * time.Minute); err != nil {
		t.Fatalf("run: %v%s", err, run.explain(apiHost))
	}
	got, stderr, explain := run.out.String(), run.errb.String(), run.explain(apiHost)
	if !strings.Contains(got, provider.ClaudeCodeVersion+" (Claude Code)") {
		t.Errorf("claude --version did not answer in the bottle:%s", explain)
	}
	if !strings.Contains(got, "ANTHROPIC_API_KEY="+provider.AnthropicAPIKeyPlaceholder) {
		t.Errorf("the agent's key is not the placeholder:%s", explain)
	}
	// The model saw the tool's output: the call ran in the bottle, as the
	// agent user, on the bottle's branch.
	if !strings.Contains(got, "tool call 1 said: /workspace") {
		t.Errorf("the unasked Bash call did not run:%s", explain)
	}
	if !regexp.MustCompile(`tool call 2 said: tool ran as agent on branch bottle/`).MatchString(got) {
		t.Errorf("the approved Bash call's output did not reach the model:%s", explain)
	}
	// The denied call never ran; the model read why.
	if !regexp.MustCompile(`tool call 3 said: .*denied by the human`).MatchString(got) ||
		strings.Contains(got, "denied call ran as agent") || !strings.Contains(got, "no trace of the denied call") {
		t.Errorf("the denied Bash call ran, or the model did not read the denial:%s", explain)
	}
	if !strings.Contains(got, "claude exit: 0") {
		t.Errorf("claude -p did not succeed:%s", explain)
	}
	if !strings.Contains(got, `"tarball":"https://registry.npmjs.org/bottle-standin-pkg/-/bottle-standin-pkg-1.0.0.tgz"`) ||
		!strings.Contains(got, "served by the stand-in registry") {
		t.Errorf("the npm registry was not reached through the allowlist:%s", explain)
	}
	// Read-only: a publish (PUT) is refused by the rule's methods.
	if !regexp.MustCompile(`(?i)PUT[^\n]*registry\.npmjs\.org|registry\.npmjs\.org[^\n]*PUT`).MatchString(got) {
		t.Errorf("a PUT to the GET-only registry was not refused:%s", explain)
	}
	if !strings.Contains(got, "example.org") || !strings.Contains(got, "not on") {
		t.Errorf("an unlisted host was not refused with the proxy's explanation:%s", explain)
	}
	if strings.Contains(got+stderr, realKey) || strings.Contains(explain, realKey) {
		t.Error("the real key appears in the run's output or the audit")
	}
	// Before the agent took the terminal, run said where to decide.
	if want := "supervise: tool requests wait up to 4m0s for your decision: run `docker bottle approvals -i " + name + "`"; !strings.Contains(stderr, want) {
		t.Errorf("run did not say where held requests are decided (%q):\n%s", want, stderr)
	}

	// The session's hooks posted its life to the supervisor.
	r := docker(t, cfg, nil, "bottle", "events", name, "--format", "json")
	if r.code != 0 {
		t.Fatalf("events: exit %d %s", r.code, r.stderr)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e api.Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Source == api.SourceAgent {
			seen[e.Type] = e.Message
		}
	}
	for _, typ := range []string{"hook.SessionStart", "hook.UserPromptSubmit", "hook.PostToolUse", "hook.Stop", "hook.SessionEnd"} {
		if _, ok := seen[typ]; !ok {
			t.Errorf("no %s event from the session; events:\n%s", typ, r.stdout)
		}
	}
	if !strings.Contains(seen["hook.PostToolUse"], "tool ran as") {
		t.Errorf("the PostToolUse event does not name the command: %q", seen["hook.PostToolUse"])
	}
	if strings.Contains(r.stdout, realKey) {
		t.Error("the real key appears in the events")
	}
}

// standInCert writes cert.pem and key.pem for host, from ca, into dir.
func standInCert(t *testing.T, ca *pki.CA, host, dir string) string {
	t.Helper()
	m, err := pki.NewMinter(ca, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := m.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomHexT(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// standInClaudeSpec is the bottle.yaml of a Claude Code bottle that talks
// to a stand-in api.anthropic.com: the agent image built on the local base
// image, the stand-in's CA, and a private rule that allows its address.
// script, when not empty, is the agent's command (a shell script; empty:
// the provider's own command); more is YAML that follows the rule: more
// rules of egress.allow, then other keys of the spec.
func standInClaudeSpec(base, caFile, script, more string) string {
	var command string
	if script != "" {
		command = "  command:\n    - sh\n    - -c\n    - |\n"
		for _, line := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
			command += "      " + line + "\n"
		}
	}
	return fmt.Sprintf(`agent:
  build_args:
    %s: %s
%segress:
  extra_ca: %s
  allow:
    - host: api.anthropic.com
      ports: [443]
      private: true
%s`, provider.BuildArgBaseImage, base, command, caFile, more)
}

// standInAPIUp is a script's lines that wait until the stand-in
// api.anthropic.com answers a request with header, through the proxy.
func standInAPIUp(header string) string {
	return `for i in $(seq 90); do
  curl -fsS --max-time 5 -o /dev/null -X POST -d '{}' https://api.anthropic.com/v1/messages/count_tokens \
    -H "` + header + `" && break
  sleep 1
done
`
}

// TestClaudeSubscriptionInBottle: with a subscription's OAuth token on the
// host (CLAUDE_CODE_OAUTH_TOKEN) and no API key, a real Claude Code session
// in the bottle sees only the token's placeholder, and every model call
// reaches the stand-in api.anthropic.com with the real token as a bearer
// credential. The session's Bash call runs unasked (no approvals here).
func TestClaudeSubscriptionInBottle(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("co-%d", time.Now().UnixNano()%1e6)
	realToken := "sk-ant-oat01-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realToken))

	ca, caFile := standInCA(t)
	certs := standInCert(t, ca, provider.AnthropicAPIHost, filepath.Join(t.TempDir(), "api"))
	spec := standInClaudeSpec(base, caFile, `env | grep -E '^(CLAUDE_CODE_OAUTH_TOKEN|ANTHROPIC_API_KEY)='
`+standInAPIUp(`Authorization: Bearer $CLAUDE_CODE_OAUTH_TOKEN`)+`claude -p 'Run the check.' --dangerously-skip-permissions </dev/null
echo "claude exit: $?"
`, "")
	run := startAgentRun(t, eng, cfg, repo, name, spec, []string{"ANTHROPIC_API_KEY=", "CLAUDE_CODE_OAUTH_TOKEN=" + realToken}, nil)
	var api testenv.Upstream
	run.whenBundleRuns(func(network string, labels map[string]string) {
		api = testenv.StartStandIn(t, eng, network, provider.AnthropicAPIHost, certs, labels, "anthropic", "--auth", "bearer",
			"--key-sha256", hex.EncodeToString(sum[:]), "--tool-command", `echo "subscription session ran as $(id -un)"`)
	})
	if err := run.wait(10 * time.Minute); err != nil {
		t.Fatalf("run: %v%s", err, run.explain(api))
	}
	got, explain := run.out.String(), run.explain(api)
	if !strings.Contains(got, "CLAUDE_CODE_OAUTH_TOKEN="+provider.ClaudeOAuthPlaceholder+"\n") || strings.Contains(got, "ANTHROPIC_API_KEY=") {
		t.Errorf("the bottle's env is not the token's placeholder alone:%s", explain)
	}
	if !strings.Contains(got, "tool call 1 said: subscription session ran as agent") || !strings.Contains(got, "claude exit: 0") {
		t.Errorf("the subscription session did not complete with the stand-in model:%s", explain)
	}
	if strings.Contains(run.errb.String()+explain, realToken) {
		t.Error("the real token appears in the run's output or the audit")
	}
}
