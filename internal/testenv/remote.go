package testenv

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Remote is the second Docker engine of hack/remote-engine.sh, another host
// in all but hardware: its own network namespace behind a veth pair, its own
// root filesystem and data root. A test reaches it only through docker
// contexts, as a user reaches a remote machine.
type Remote struct {
	// Config is a DOCKER_CONFIG of the test's own, with the plugin in its
	// cli-plugins (as DockerConfig) and the contexts TLSContext and
	// SSHContext.
	Config string
	// TLSContext reaches the engine as tcp:// with TLS client certificates.
	TLSContext string
	// SSHContext reaches it as ssh:// (key auth; the far side's docker CLI
	// runs `docker system dial-stdio`).
	SSHContext string
	// Addr is the engine's address, in the namespace's private /30.
	Addr string
	// path is the dir that must come first on PATH: its ssh uses the
	// harness's key and known host instead of the user's ~/.ssh.
	path string
}

// Env is what to add to a command's environment (after os.Environ: exec
// keeps the last value of a name) for the docker CLI, and the plugin it
// runs, to reach the remote engine through the contexts.
func (r *Remote) Env() []string {
	return []string{"DOCKER_CONFIG=" + r.Config, "PATH=" + r.path + string(os.PathListSeparator) + os.Getenv("PATH")}
}

// SSH is a command that runs a shell command on the remote host, as root,
// with the harness's key.
func (r *Remote) SSH(command string) *exec.Cmd {
	return exec.Command(filepath.Join(r.path, "ssh"), "root@"+r.Addr, command)
}

// RemoteEngine returns the remote engine that `make e2e` brings up (bash
// hack/remote-engine.sh up). Without it the test fails when CI=true (CI
// must see the gap) and is skipped elsewhere, saying how to bring it up:
// making it takes root and a Debian mirror.
func RemoteEngine(t testing.TB) *Remote {
	t.Helper()
	needsE2E(t, "testenv.RemoteEngine")
	script := filepath.Join(ModuleRoot(), "hack", "remote-engine.sh")
	out, err := exec.Command("bash", script, "env").Output()
	if err != nil {
		msg := "the remote engine of hack/remote-engine.sh is not up (make e2e brings it up; by hand: sudo bash hack/remote-engine.sh up)"
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = v
		}
	}
	shared := vals["DOCKER_BOTTLE_REMOTE_CONFIG"]
	r := &Remote{
		Config:     DockerConfig(t),
		TLSContext: vals["DOCKER_BOTTLE_REMOTE_TLS_CONTEXT"],
		SSHContext: vals["DOCKER_BOTTLE_REMOTE_SSH_CONTEXT"],
		Addr:       vals["DOCKER_BOTTLE_REMOTE_ADDR"],
		path:       vals["DOCKER_BOTTLE_REMOTE_PATH"],
	}
	if shared == "" || r.TLSContext == "" || r.SSHContext == "" || r.path == "" {
		t.Fatalf("hack/remote-engine.sh env said too little:\n%s", out)
	}
	// The contexts (metadata and TLS material) are copied, so a test that
	// changes its config changes no other test's.
	if err := copyTree(filepath.Join(shared, "contexts"), filepath.Join(r.Config, "contexts")); err != nil {
		t.Fatalf("copying the remote engine's contexts: %v", err)
	}
	return r
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
}
