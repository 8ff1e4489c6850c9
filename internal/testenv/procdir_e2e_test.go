//go:build e2e

package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv makes this test binary, re-executed, the test process whose
// dirs are looked at.
const childEnv = "DOCKER_BOTTLE_TEST_PROCDIR_CHILD"

// TestProcessDirsAreGoneWhenTheTestsEnd runs a test process that builds
// the plugin (Plugin) and makes a dir as the git helper's (ProcessDir), in
// a temp dir of its own: once it has exited, neither is left there.
func TestProcessDirsAreGoneWhenTheTestsEnd(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessDirsChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1", "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the test process failed: %v\n%s", err, out.String())
	}
	made := strings.Count(out.String(), "made "+tmp)
	if made != 2 {
		t.Fatalf("the test process made %d dirs in %s, want 2:\n%s", made, tmp, out.String())
	}
	left, err := filepath.Glob(filepath.Join(tmp, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left after the test process ended: %v", left)
	}
}

// TestProcessDirsChild is the test process of
// TestProcessDirsAreGoneWhenTheTestsEnd; alone, it does nothing.
func TestProcessDirsChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	plugin := Plugin(t)
	if _, err := os.Stat(plugin); err != nil {
		t.Fatal(err)
	}
	dir, err := ProcessDir("git-remote-bottle-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("made %s", filepath.Dir(plugin))
	t.Logf("made %s", dir)
}
