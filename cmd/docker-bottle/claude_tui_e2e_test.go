//go:build e2e

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/provider"
)

// ansi matches terminal control sequences, to read a TUI's screen as text;
// cursorForward is the one a TUI draws a space with.
var (
	ansi          = regexp.MustCompile(`\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMNOZc])`)
	cursorForward = regexp.MustCompile(`\x1b\[[0-9]*C`)
)

// TestClaudeInteractiveInBottle is the user's main job as a user does it:
// `docker bottle run` in a repository, no bottle.yaml command, on a real
// terminal. Claude Code's interactive TUI starts with the provider's
// defaults and none of its first-run questions (onboarding, trusting the
// folder, the key found in the environment, bypass-permissions mode): the
// first thing typed is the task. The stand-in model scripts a Bash call,
// whose output the TUI shows back; /exit ends the session and the run.
func TestClaudeInteractiveInBottle(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("ct-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-ant-api03-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))

	ca, caFile := standInCA(t)
	certs := standInCert(t, ca, provider.AnthropicAPIHost, filepath.Join(t.TempDir(), "api"))
	// Only what a test must add: the local base image, and the stand-in's
	// CA and address. The command is the provider's.
	spec := standInClaudeSpec(base, caFile, "", "")

	master, slave := openTestPTY(t)
	defer master.Close()
	_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	// No --progress: on a terminal, auto is the live display, as a user sees it.
	run := startAgentRun(t, eng, cfg, repo, name, spec, []string{"ANTHROPIC_API_KEY=" + realKey, "CLAUDE_CODE_OAUTH_TOKEN="}, slave)
	slave.Close()
	var mu sync.Mutex
	var raw bytes.Buffer
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			raw.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	screen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return ansi.ReplaceAllString(cursorForward.ReplaceAllString(raw.String(), " "), "")
	}
	var api testenv.Upstream
	run.whenBundleRuns(func(network string, labels map[string]string) {
		api = testenv.StartStandIn(t, eng, network, provider.AnthropicAPIHost, certs, labels, "anthropic",
			"--key-sha256", hex.EncodeToString(sum[:]), "--tool-command", `echo "interactive tool ran as $(id -un)"`)
	})
	waitFor := func(what string, ok func(string) bool, limit time.Duration) {
		t.Helper()
		for start := time.Now(); !ok(screen()); time.Sleep(100 * time.Millisecond) {
			select {
			case err := <-run.done:
				t.Fatalf("the run ended (%v) before %s; screen:\n%s\nstand-in:\n%s", err, what, screen(), containerLogs(t, eng, api))
			default:
			}
			if time.Since(start) > limit {
				t.Fatalf("never saw %s; screen:\n%s\nstand-in:\n%s", what, screen(), containerLogs(t, eng, api))
			}
		}
	}
	// The TUI is up and waiting for input: its banner, then the rule of
	// the input box.
	waitFor("Claude Code's prompt", func(s string) bool {
		i := strings.Index(s, "Claude Code")
		return i >= 0 && strings.Contains(s[i:], "────")
	}, 5*time.Minute)
	// The TUI moves the cursor instead of printing some spaces: compare
	// without spaces.
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	// within polls ok for up to limit, and says whether it came true.
	within := func(limit time.Duration, ok func() bool) bool {
		for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if ok() {
				return true
			}
		}
		return ok()
	}
	// Typed text shows in the input box once the TUI reads its input.
	if _, err := master.WriteString("Run the check."); err != nil {
		t.Fatal(err)
	}
	waitFor("the typed prompt in the input box", func(s string) bool { return strings.Contains(squash(s), "Runthecheck.") }, time.Minute)
	// Enter, typed apart from the text (a TUI reads a fast burst ending in
	// a newline as a paste), and again while the stand-in has seen no
	// request: an Enter the TUI took for part of the paste is lost.
	asked := func() bool {
		return strings.Contains(containerLogs(t, eng, api), "/v1/messages") || strings.Contains(squash(screen()), "toolcall1said")
	}
	for i := 0; i < 5 && !asked(); i++ {
		master.WriteString("\r")
		within(5*time.Second, asked)
	}
	waitFor("the model's answer with the tool's output", func(s string) bool {
		return strings.Contains(squash(s), squash("tool call 1 said: interactive tool ran as agent"))
	}, 3*time.Minute)
	master.WriteString("/exit")
	waitFor("/exit in the input box", func(s string) bool { return strings.Contains(s, "/exit") }, time.Minute)
	master.WriteString("\r")
	select {
	case err := <-run.done:
		if err != nil {
			t.Errorf("the run did not end cleanly after /exit: %v\nscreen:\n%s", err, screen())
		}
	case <-time.After(2 * time.Minute):
		run.cmd.Process.Kill()
		t.Fatalf("the run did not end after /exit; screen:\n%s", screen())
	}
	got := screen()
	for _, question := range []string{"Do you trust", "Detected a custom API key", "Bypass Permissions mode", "Choose the text style"} {
		if strings.Contains(got, question) {
			t.Errorf("Claude Code asked a first-run question (%q); screen:\n%s", question, got)
		}
	}
	mu.Lock()
	leaked := strings.Contains(raw.String(), realKey)
	mu.Unlock()
	if leaked {
		t.Error("the real key reached the terminal")
	}
}
