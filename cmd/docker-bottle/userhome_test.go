package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestMain keeps the agent settings of whoever runs the tests out of the
// tests' bottles (run carries the user's settings: agent.user_config): the
// plugins the tests start find Claude Code's and Codex's folders empty,
// unless a test names its own.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "docker-bottle-test-agent-config")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("CLAUDE_CONFIG_DIR", dir)
	os.Setenv("CODEX_HOME", dir)
	// testenv.Main removes the plugin and the git helper the tests built.
	code := testenv.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}
