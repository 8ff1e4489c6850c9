//go:build e2e

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// TestClaudeSeesTheUserConfig: a real Claude Code session in a bottle
// (docker backend, stand-in model) runs with the user's own settings from a
// test folder (CLAUDE_CONFIG_DIR, as Claude Code itself reads it): the
// model receives the user's CLAUDE.md instruction and the text of the
// user's custom slash command, which the session was started with. The
// planted login file and a credential in ~/.claude.json's account state
// reach neither the bottle's disk nor the model; a tool call looks for
// them in the bottle.
func TestClaudeSeesTheUserConfig(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("uc-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-ant-api03-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))
	const (
		instruction = "userconf-marker-claude-md: answer in haiku"
		command     = "userconf-marker-command: greet the reviewer"
		planted     = "userconf-planted-login-value"
	)
	userDir := filepath.Join(t.TempDir(), "claude-config")
	testio.WriteFiles(t, userDir, map[string]string{
		"CLAUDE.md":         instruction + "\n",
		"commands/greet.md": command + "\n",
		".credentials.json": `{"claudeAiOauth": {"accessToken": "` + planted + `"}}`,
		".claude.json":      `{"oauthAccount": {"note": "` + planted + `"}, "mcpServers": {}}`,
	})

	ca, caFile := standInCA(t)
	certs := standInCert(t, ca, provider.AnthropicAPIHost, filepath.Join(t.TempDir(), "api"))
	look := `ls ~/.claude/commands; test -e ~/.claude/.credentials.json && echo login-file-present || echo no-login-file; ` +
		// Split, so that the command (in the session's transcript) does
		// not hold the value it looks for.
		`grep -rl "userconf-planted-$(echo login)-value" ~ /run/bottle 2>/dev/null || echo planted-value-nowhere`
	spec := standInClaudeSpec(base, caFile, standInAPIUp(`x-api-key: $ANTHROPIC_API_KEY`)+`claude -p '/greet' --dangerously-skip-permissions </dev/null
echo "claude exit: $?"
`, "")
	run := startAgentRun(t, eng, cfg, repo, name, spec,
		[]string{"ANTHROPIC_API_KEY=" + realKey, "CLAUDE_CODE_OAUTH_TOKEN=", "CLAUDE_CONFIG_DIR=" + userDir}, nil)
	var api testenv.Upstream
	run.whenBundleRuns(func(network string, labels map[string]string) {
		api = testenv.StartStandIn(t, eng, network, provider.AnthropicAPIHost, certs, labels, "anthropic",
			"--key-sha256", hex.EncodeToString(sum[:]), "--tool-command", look,
			"--seen", instruction, "--seen", command, "--seen", planted)
	})
	if err := run.wait(10 * time.Minute); err != nil {
		t.Fatalf("run: %v%s", err, run.explain(api))
	}
	got, explain := run.out.String(), run.explain(api)
	if !strings.Contains(run.errb.String(), "Carrying 2 files of your agent settings") {
		t.Errorf("the run did not say what it carries:%s", explain)
	}
	for _, want := range []string{"stand-in model: saw " + instruction, "stand-in model: saw " + command, "claude exit: 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:%s", want, explain)
		}
	}
	if !strings.Contains(got, "tool call 1 said: greet.md no-login-file planted-value-nowhere") {
		t.Errorf("the bottle's look for the login file:%s", explain)
	}
	if strings.Contains(got, "saw "+planted) {
		t.Errorf("the model received the planted login value:%s", explain)
	}
}

// TestUserConfigOnBothBackends: the user's settings reach the agent's home
// on the docker backend and on smolvm (the contract fake), through the
// guest dir both mount; the login file does not, and a secret in a
// carried file stops the run before it makes anything.
func TestUserConfigOnBothBackends(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.DockerConfig(t)
	userDir := filepath.Join(t.TempDir(), "claude-config")
	host := map[string]string{
		"CLAUDE.md":            "user instruction for both backends\n",
		"agents/critic.md":     "---\nname: critic\n---\n",
		".credentials.json":    `{"claudeAiOauth": {"accessToken": "x"}}`,
		"projects/p/s.jsonl":   "{}",
		"hooks/fmt.sh":         "#!/bin/sh\n",
		"output-styles/x.md":   "terse\n",
		"commands/nested/c.md": "command\n",
	}
	testio.WriteFiles(t, userDir, host)
	files := map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN git init -q /workspace\nENV HOME=/root\nWORKDIR /workspace\n",
		"bottle.yaml": "agent:\n  provider: claude\n  dockerfile: Dockerfile\n" +
			`  command: [sh, -c, 'cat ~/.claude/CLAUDE.md; cd ~/.claude && find . -type f | sort | tr "\n" " "; echo listed; ` +
			// The agent changes its copy: the user's files stay as they are.
			`echo changed >> CLAUDE.md && rm agents/critic.md && echo > commands/new.md && echo changed-copy; sleep 600']` + "\n",
	}
	for _, backend := range []string{"docker", "smolvm"} {
		t.Run(backend, func(t *testing.T) {
			env := []string{"CLAUDE_CONFIG_DIR=" + userDir, "ANTHROPIC_API_KEY=sk-ant-api03-test", "CLAUDE_CODE_OAUTH_TOKEN=",
				"DOCKER_BOTTLE_SMOLVM=" + fake, "SMOLVM_FAKE_STATE=" + t.TempDir()}
			name := bottleOf(t, cfg, env, backend, "uc"+backend[:1], files)
			logs := strings.ReplaceAll(waitLogs(t, cfg, env, name, "changed-copy"), "\r\n", "\n")
			want := "user instruction for both backends\n./CLAUDE.md ./agents/critic.md ./commands/nested/c.md ./hooks/fmt.sh ./output-styles/x.md listed"
			if !strings.Contains(logs, want) {
				t.Errorf("the agent's ~/.claude on %s: %q, want %q", backend, logs, want)
			}
			if got := hostFiles(t, userDir); !maps.Equal(got, host) {
				t.Errorf("the bottle on %s wrote back to the user's settings: %q, want %q", backend, got, host)
			}
		})
	}

	// A secret in a carried file: run refuses, naming it, and makes nothing.
	if err := os.WriteFile(filepath.Join(userDir, "agents/critic.md"), []byte("token ghp_R8t2Yv6Bn4Mq9Wx1Zc7Lk3Hj5Gf0Ds8Ap2Q\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: claude\n  image: "+base+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"CLAUDE_CONFIG_DIR=" + userDir, "ANTHROPIC_API_KEY=sk-ant-api03-test", "DOCKER_BOTTLE_SMOLVM="}
	r := docker(t, cfg, env, "bottle", "run", "-d", "--backend", "docker", "--name", "uc-secret", repo)
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(userDir, "agents/critic.md")+":1 holds what looks like a GitHub token") {
		t.Errorf("run with a token in a carried file: exit %d\n%s", r.code, r.stderr)
	}
	if ls := docker(t, cfg, nil, "bottle", "ls", "-q"); strings.TrimSpace(ls.stdout) != "" {
		t.Errorf("the refused run left a bottle: %q", ls.stdout)
	}
	testenv.NothingLeft(t, eng, bottleIn(cfg, env, "uc-secret", repo))
	r = docker(t, cfg, env, "bottle", "run", "--dry-run", "--no-user-config", "--backend", "docker", "--name", "uc-secret", repo)
	if r.code != 0 {
		t.Errorf("--no-user-config does not read the settings: exit %d\n%s", r.code, r.stderr)
	}
}

// hostFiles reads the files under dir, by slash-separated relative path.
func hostFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
