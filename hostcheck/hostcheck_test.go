package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
)

func TestIsRemote(t *testing.T) {
	for ep, remote := range map[string]bool{
		"unix:///var/run/docker.sock": false,
		"npipe:////./pipe/docker":     false,
		"tcp://127.0.0.1:2375":        false,
		"tcp://localhost:2376":        false,
		"tcp://[::1]:2375":            false,
		"tcp://10.0.0.5:2376":         true,
		"tcp://docker.example:2376":   true,
		"ssh://me@build-host":         true,
	} {
		if got := IsRemote(ep); got != remote {
			t.Errorf("IsRemote(%q) = %v, want %v", ep, got, remote)
		}
	}
}

func TestHypervisor(t *testing.T) {
	missing := Hypervisor("linux", "amd64", filepath.Join(t.TempDir(), "kvm"))
	if missing.Usable || !strings.Contains(missing.Detail, "modprobe") {
		t.Errorf("missing kvm: %+v", missing)
	}
	dev := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok := Hypervisor("linux", "amd64", dev); !ok.Usable {
		t.Errorf("read-write kvm: %+v", ok)
	}
	if f := Hypervisor("darwin", "amd64", ""); f.Usable || !strings.Contains(f.Detail, "Apple silicon") {
		t.Errorf("intel mac: %+v", f)
	}
	if f := Hypervisor("darwin", "arm64", ""); !f.Usable {
		t.Errorf("apple silicon: %+v", f)
	}
}

func TestDiagnose(t *testing.T) {
	f := plan.Facts{
		HostOS:     "linux",
		Engine:     plan.EngineFacts{Reachable: true, OS: "linux", Context: "default", Endpoint: "unix:///x"},
		Smolvm:     plan.SmolvmFacts{Found: true, Path: "/bin/smolvm", Version: "1.8.1", Warning: "older than 1.8.3"},
		Hypervisor: plan.HypervisorFacts{Usable: true, Detail: "ok"},
	}
	r := Diagnose(f, Extra{BuildxPath: "/x/docker-buildx"})
	if !r.CanRun || r.Choice.Backend != "smolvm" || r.Choice.NetworkMode != "bridge" {
		t.Fatalf("report %+v", r)
	}
	status := map[string]Status{}
	for _, c := range r.Checks {
		status[c.Name] = c.Status
	}
	if status["smolvm"] != Warn || status["buildx"] != OK || status["engine"] != OK {
		t.Errorf("statuses %v", status)
	}

	// /dev/kvm opens but no microVM boots: auto falls back to docker and
	// says why, and the boot check shows as a warning.
	f.Hypervisor = plan.HypervisorFacts{Usable: true, Detail: "ok", BootChecked: true, BootDetail: "smolvm: Error: KVM_EXIT_INTERNAL_ERROR"}
	r = Diagnose(f, Extra{})
	status = map[string]Status{}
	for _, c := range r.Checks {
		status[c.Name] = c.Status
	}
	if !r.CanRun || r.Choice.Backend != "docker" || !strings.Contains(r.Choice.Why, "KVM_EXIT_INTERNAL_ERROR") || status["microvm boot"] != Warn {
		t.Errorf("no boot: %+v %v", r.Choice, status)
	}
	if _, err := plan.Choose(f, "smolvm", "auto"); err == nil || !strings.Contains(err.Error(), "no microVM boots here") {
		t.Errorf("explicit smolvm where nothing boots: %v", err)
	}
	f.Hypervisor.Boots = true
	if r = Diagnose(f, Extra{}); r.Choice.Backend != "smolvm" {
		t.Errorf("a machine boots: %+v", r.Choice)
	}

	// On a remote engine the docker backend runs; smolvm, which runs its
	// machine on this client, does not.
	f.Engine.Remote = true
	r = Diagnose(f, Extra{GitHelper: "/usr/local/bin/git-remote-bottle"})
	if !r.CanRun || r.Choice.Backend != "docker" {
		t.Errorf("remote engine: %+v", r)
	}
	status = map[string]Status{}
	for _, c := range r.Checks {
		status[c.Name] = c.Status
	}
	if status["engine"] != OK || status["backend"] != OK {
		t.Errorf("remote engine's checks: %v", status)
	}
	if b := r.Checks[len(r.Checks)-1]; b.Name != "backend" || !strings.Contains(b.Detail, "auto uses docker") ||
		!strings.Contains(b.Detail, "smolvm runs the machine on this client") {
		t.Errorf("remote engine's backend check: %+v", b)
	}
	f.Engine.Remote = false
	r = Diagnose(f, Extra{StateErr: os.ErrPermission})
	if r.CanRun {
		t.Error("an unwritable state dir still lets bottles run")
	}
}
