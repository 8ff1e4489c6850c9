//go:build e2e

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/smolvm"
)

// TestDoctorWithTheRealSmolvm: through the real docker CLI, doctor finds the
// pinned real smolvm, boots a test microVM with it, and `auto` follows what
// the boot showed: the microVM backend where a machine boots, the docker
// backend (with smolvm's own reason) where this host's hypervisor cannot
// boot one. The verdict must agree with a boot made directly here. run then
// reuses the verdict instead of booting again, and an explicit --backend
// smolvm is refused with the same reason where nothing boots.
func TestDoctorWithTheRealSmolvm(t *testing.T) {
	testenv.Engine(t)
	real := testenv.RealSmolvm(t)
	cfg := testenv.DockerConfig(t)
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + real}

	r := docker(t, cfg, env, "bottle", "doctor", "--format", "json")
	rep := doctorReport(t, r)
	s, hv := rep.Facts.Smolvm, rep.Facts.Hypervisor
	if s.Path != real || s.Version != smolvm.CheckedVersion.String() || s.Error != "" {
		t.Fatalf("doctor's smolvm: %+v", s)
	}
	if !hv.Usable || !hv.BootChecked {
		t.Fatalf("doctor did not boot a test machine: %+v", hv)
	}
	t.Logf("doctor: boots=%v: %s", hv.Boots, hv.BootDetail)

	// The same boot, made here directly.
	root, err := os.MkdirTemp("", "bootcheck-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	helper, err := bundlebin.Binary("amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bottle-bundle"), helper, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	direct := smolvm.New(real).BootCheck(ctx, smolvm.BootCheckOptions{Rootfs: root, Command: []string{"/bottle-bundle", "ready"}, Marker: "bottle-bundle ready"})
	if (direct == nil) != hv.Boots {
		t.Fatalf("doctor says boots=%v, a direct boot says %v", hv.Boots, direct)
	}

	var boot hostcheck.Check
	for _, c := range rep.Checks {
		if c.Name == "microvm boot" {
			boot = c
		}
	}
	if rep.Choice == nil {
		t.Fatalf("no choice: %s", rep.Reason)
	}
	if hv.Boots {
		if boot.Status != hostcheck.OK || rep.Choice.Backend != "smolvm" {
			t.Errorf("a machine boots, yet: %+v, choice %+v", boot, rep.Choice)
		}
		return
	}
	// smolvm's own words reach the user, with what to do.
	if !strings.Contains(hv.BootDetail, "Error: ") || boot.Status != hostcheck.Warn ||
		!strings.Contains(hv.BootDetail, "--backend docker") || rep.Choice.Backend != "docker" ||
		!strings.Contains(rep.Choice.Why, "no microVM boots here") {
		t.Errorf("nothing boots, yet: %+v, choice %+v (direct: %v)", boot, rep.Choice, direct)
	}

	// run reuses doctor's verdict rather than booting again: a mark put
	// into the kept verdict shows up in run's refusal of an explicit
	// smolvm backend.
	verdict := filepath.Join(cfg, "bottle", "bootcheck.json")
	b, err := os.ReadFile(verdict)
	if err != nil {
		t.Fatalf("doctor kept no verdict: %v", err)
	}
	marked := strings.Replace(string(b), `"detail":"`, `"detail":"MARK `, 1)
	if marked == string(b) {
		t.Fatalf("unexpected verdict file: %s", b)
	}
	if err := os.WriteFile(verdict, []byte(marked), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-qm", "bottle spec")
	r = docker(t, cfg, env, "bottle", "run", "--dry-run", "--backend", "smolvm", repo)
	if r.code == 0 || !strings.Contains(r.stderr, "no microVM boots here: MARK ") || !strings.Contains(r.stderr, "--backend docker") {
		t.Errorf("run --backend smolvm where nothing boots: exit %d, %q", r.code, r.stderr)
	}
}
