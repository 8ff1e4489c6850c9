//go:build e2e

package smolvm_test

// Tests against the real smolvm (the pinned release hack/tools.sh installs):
// what the plugin depends on must hold on it, and the contract fake must
// answer the same. What needs a booted machine cannot be shown on a host
// whose hypervisor cannot boot smolvm's guest kernel; BootCheck says which
// kind of host this is, and a failed boot must be classified, never raw.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

// realCLI is the real smolvm with all its state in a data dir of the test's.
func realCLI(t *testing.T) (*smolvm.CLI, string) {
	t.Helper()
	data := t.TempDir()
	cli := smolvm.New(testenv.RealSmolvm(t), smolvm.WithEnv("SMOLVM_DATA_DIR="+data), smolvm.WithGracePeriod(20*time.Second))
	t.Cleanup(func() {
		ms, _ := cli.MachineList(context.Background())
		for _, m := range ms {
			if err := cli.MachineDelete(context.Background(), m.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return cli, data
}

// contractRun is one pass of what the plugin does with machines that need
// no boot, and what it reads back.
type contractRun struct {
	version     string
	created     smolvm.Machine
	listed      []string
	errs        map[string]error
	dataDirSeen bool
}

func runContract(t *testing.T, cli *smolvm.CLI) contractRun {
	t.Helper()
	ctx := context.Background()
	r := contractRun{errs: map[string]error{}}
	v, err := cli.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	r.version = v.String()
	if ms, err := cli.MachineList(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("a fresh smolvm lists %v, %v", ms, err)
	}
	o := smolvm.CreateOptions{
		Name:       "contract-1",
		Labels:     map[string]string{"io.docker-bottle.bottle": "contract", "io.docker-bottle.role": "agent"},
		Env:        []smolvm.EnvVar{smolvm.PlainEnv("FOO", "bar")},
		AllowHosts: []string{"10.99.0.2"},
		CPUs:       1,
		MemoryMiB:  512,
		Workload:   []string{"/bottle-bundle", "sleep"},
	}
	if err := cli.MachineCreate(ctx, o); err != nil {
		t.Fatalf("create: %v", err)
	}
	r.errs["create again"] = cli.MachineCreate(ctx, o)
	if r.created, err = cli.MachineStatus(ctx, o.Name); err != nil {
		t.Fatalf("status: %v", err)
	}
	ms, err := cli.MachineList(ctx)
	if err != nil {
		t.Fatalf("ls: %v", err)
	}
	for _, m := range ms {
		r.listed = append(r.listed, m.Name+" "+string(m.State)+" "+m.Labels["io.docker-bottle.bottle"])
	}
	_, r.errs["status unknown"] = cli.MachineStatus(ctx, "contract-none")
	r.errs["stop not running"] = cli.MachineStop(ctx, o.Name)
	r.errs["stop unknown"] = cli.MachineStop(ctx, "contract-none")
	_, r.errs["exec not running"] = cli.MachineExec(ctx, smolvm.ExecOptions{Name: o.Name, Command: []string{"true"}})
	_, r.errs["exec unknown"] = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "contract-none", Command: []string{"true"}})
	dir, err := cli.MachineDataDir(ctx, o.Name)
	if err != nil {
		t.Fatalf("data-dir: %v", err)
	}
	_, statErr := os.Stat(dir)
	r.dataDirSeen = statErr == nil
	_, r.errs["data-dir unknown"] = cli.MachineDataDir(ctx, "contract-none")
	r.errs["delete unknown"] = cli.MachineDelete(ctx, "contract-none")
	if err := cli.MachineDelete(ctx, o.Name); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if ms, err := cli.MachineList(ctx); err != nil || len(ms) != 0 {
		t.Errorf("after delete: %v, %v", ms, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("delete left the machine's data dir %s (%v)", dir, err)
	}
	return r
}

// TestRealSmolvmContract runs the same machine calls on the real smolvm and
// on the fake, and compares what the plugin reads: versions, the recorded
// machine, and which sentinel every refusal matches.
func TestRealSmolvmContract(t *testing.T) {
	real, _ := realCLI(t)
	fake, _ := newCLI(t)
	want := map[string]error{
		"create again":     smolvm.ErrAlreadyExists,
		"status unknown":   smolvm.ErrMachineNotFound,
		"stop not running": nil,
		"stop unknown":     smolvm.ErrMachineNotFound,
		"exec not running": smolvm.ErrNotRunning,
		"exec unknown":     smolvm.ErrMachineNotFound,
		"data-dir unknown": smolvm.ErrMachineNotFound,
		"delete unknown":   smolvm.ErrMachineNotFound,
	}
	runs := map[string]contractRun{"real": runContract(t, real), "fake": runContract(t, fake)}
	for who, r := range runs {
		if r.version != smolvm.CheckedVersion.String() {
			t.Errorf("%s smolvm is %s; the contract was recorded on %s", who, r.version, smolvm.CheckedVersion)
		}
		for what, sentinel := range want {
			err := r.errs[what]
			if (sentinel == nil) != (err == nil) || (sentinel != nil && !errors.Is(err, sentinel)) {
				t.Errorf("%s: %s: %v, want %v", who, what, err, sentinel)
			}
		}
		m := r.created
		if m.Name != "contract-1" || m.State != smolvm.StateCreated || m.PID != nil || m.CPUs != 1 || m.MemoryMiB != 512 ||
			m.Labels["io.docker-bottle.role"] != "agent" || !m.Network {
			t.Errorf("%s: the created machine reads back as %+v", who, m)
		}
		if len(r.listed) != 1 || r.listed[0] != "contract-1 created contract" {
			t.Errorf("%s: ls --json: %q", who, r.listed)
		}
		if !r.dataDirSeen {
			t.Errorf("%s: data-dir names no directory", who)
		}
	}
}

// TestRealSmolvmBoot boots a test microVM on the real smolvm. Where the
// hypervisor runs smolvm's guest, the command runs; where it cannot (this
// project's CI hosts: a paravirtualised nested KVM, see CONTRACT.md), the
// failure is ErrBootFailed or a KVM sentinel with a remedy. Either way the
// fake's "noboot" host fails the same way, and nothing is left behind.
func TestRealSmolvmBoot(t *testing.T) {
	real, data := realCLI(t)
	// As root, smolvm runs the VM as a uid of its own: the image dir must
	// be readable by it (t.TempDir's parent is not).
	root, err := os.MkdirTemp("", "bootcheck-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	helper, err := bundlebin.Binary("amd64")
	if err != nil {
		t.Fatalf("the bundle binary (make bundle-bins): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bottle-bundle"), helper, 0o755); err != nil {
		t.Fatal(err)
	}
	o := smolvm.BootCheckOptions{Rootfs: root, Command: []string{"/bottle-bundle", "ready"}, Marker: "bottle-bundle ready"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = real.BootCheck(ctx, o)
	if err != nil && strings.Contains(err.Error(), "not found at "+root) {
		t.Errorf("the VM could not read its image dir: %v", err)
	}
	t.Logf("real smolvm boot check: %v", err)
	// The pinned smolvm is installed by make tools: its VM users must find
	// its libraries, or the check says nothing of the hypervisor.
	if errors.Is(err, smolvm.ErrLibraries) {
		t.Errorf("smolvm's VM could not load its libraries (where hack/tools.sh installed it): %v", err)
	}
	var ce *smolvm.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Remedy != "" &&
		(errors.Is(err, smolvm.ErrBootFailed) || errors.Is(err, smolvm.ErrKVMPermission) || errors.Is(err, smolvm.ErrKVMUnavailable))) {
		t.Errorf("a failed boot must be classified with a remedy: %#v", err)
	}
	// The check keeps its state in a data dir of its own: the CLI's own
	// (the test's) is untouched.
	if ms, lerr := real.MachineList(ctx); lerr != nil || len(ms) != 0 {
		t.Errorf("the boot check left machines: %v %v", ms, lerr)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, ".cache", "smolvm", "vms")); len(ents) != 0 {
		t.Errorf("the boot check left machine dirs in the CLI's data dir: %v", ents)
	}
	assertNoProcessesUnder(t, os.TempDir()+"/bottle-bootcheck-")

	fake, _ := newCLI(t, fakestate.EnvKVM+"=noboot")
	ferr := fake.BootCheck(ctx, o)
	if err != nil && !errors.Is(ferr, smolvm.ErrBootFailed) {
		t.Errorf("the fake's noboot host: %v", ferr)
	}
	okFake, _ := newCLI(t)
	if err := okFake.BootCheck(ctx, o); err != nil {
		t.Errorf("the fake boots: %v", err)
	}
}

// TestRealSmolvmInterruptedStart interrupts a real `machine start` (smolvm
// handles SIGINT, not SIGTERM) and checks that the machine can then be
// removed with nothing of it left running.
func TestRealSmolvmInterruptedStart(t *testing.T) {
	real, data := realCLI(t)
	ctx := context.Background()
	if err := real.MachineCreate(ctx, smolvm.CreateOptions{Name: "interrupted", Workload: []string{"/bottle-bundle", "sleep"}}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := real.MachineStart(sctx, "interrupted")
	t.Logf("interrupted start: %v", err)
	if err == nil {
		if err := real.MachineStop(ctx, "interrupted"); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	if err := real.MachineDelete(ctx, "interrupted"); err != nil {
		t.Fatalf("delete after an interrupted start: %v", err)
	}
	if ms, err := real.MachineList(ctx); err != nil || len(ms) != 0 {
		t.Errorf("after delete: %v %v", ms, err)
	}
	assertNoProcessesUnder(t, data)
}

// assertNoProcessesUnder fails when a process's command line names a path
// under prefix (a VM monitor of the test's smolvm state left running).
func assertNoProcessesUnder(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && strings.Contains(string(b), prefix) && e.Name() != "self" {
				left = append(left, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left under %s: %q", prefix, left)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
