package smolvm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandErrorClassification(t *testing.T) {
	cases := []struct {
		code   int
		stderr string
		want   error
	}{
		{2, "error: unexpected argument '--allow-host' found\n\nUsage: smolvm machine create [OPTIONS]\n", ErrUsage},
		{1, "Starting...\nError: kvm not available: /dev/kvm missing; modprobe kvm\n", ErrKVMUnavailable},
		{1, "Error: kvm permission denied: Cannot access /dev/kvm; sudo usermod -aG kvm $USER\n", ErrKVMPermission},
		{1, "Error: config operation failed: create machine: machine 'x' already exists or is being created\n", ErrAlreadyExists},
		{1, "Error: vm not found: x\n", ErrMachineNotFound},
		{1, "Error: config operation failed: machine status: machine 'x' not found\n", ErrMachineNotFound},
		{1, "Error: agent operation failed: connect: machine 'x' is not running. Use 'smolvm machine start --name x' first.\n", ErrNotRunning},
		{1, "Error: agent operation failed: pull image: crane manifest failed: 401\n", nil},
		// Recorded from smolvm 1.32.2 on this project's CI hosts.
		{1, "Error: agent operation failed: start machine: kvm not available: KVM not available. Ensure KVM kernel module is loaded.\n", ErrKVMUnavailable},
		{1, "Error: agent operation failed: start machine: agent operation failed: monitor agent: Then log out and log back in for the change to take effect.); " +
			"libkrun detail: build microVM: Internal error while starting microVM: KvmContext(KvmOpen(Error(13))) (boot process exited (code 1) before the agent was ready)\n", ErrKVMPermission},
		{1, "Error: agent operation failed: start machine: agent operation failed: monitor agent: [2026-12-04T16:04:07.040550Z ERROR krun_vmm::linux::vstate] " +
			"Received KVM_EXIT_INTERNAL_ERROR signal (boot process exited (code 1) before the agent was ready)\n", ErrBootFailed},
		{1, "Error: agent operation failed: start machine: agent operation failed: monitor agent: Error: agent operation failed: find libraries: " +
			"libkrun/libkrunfw not found. Install smolvm with bundled libraries or set SMOLVM_LIB_DIR. (boot process exited (code 1) before the agent was ready)\n", ErrLibraries},
		{1, "Error: agent operation failed: start machine: agent operation failed: wait for ready: agent did not become ready within 30 seconds: no boot progress for 30 seconds\n", ErrBootFailed},
		{1, "Error: agent operation failed: connect: machine 'x' is not running. Start it with 'smolvm machine start --name x'; if a start is already in progress, retry once it finishes.\n", ErrNotRunning},
		{1, "Error: agent operation failed: run interactive: connection to VM lost\n", ErrMachineStopped},
		{2, "error: unexpected argument 'x' found\n\nUsage: smolvm machine exec [OPTIONS] <COMMAND>...\n\nFor more information, try '--help'.\n", ErrUsage},
	}
	for _, c := range cases {
		err := newCommandError("doing x", nil, c.code, []byte(c.stderr), "x")
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%q: %v, want %v", c.stderr, err, c.want)
		}
		if c.want == nil && err.Unwrap() != nil {
			t.Errorf("%q: classified as %v", c.stderr, err.Unwrap())
		}
		// smolvm's line is kept verbatim, after what the plugin was doing.
		line := strings.TrimSpace(c.stderr[strings.LastIndex(strings.TrimSpace(c.stderr), "\n")+1:])
		if c.code == 2 {
			line = lastErrorLine([]byte(c.stderr), "error: ")
		}
		if !strings.HasPrefix(err.Error(), "doing x: "+line) {
			t.Errorf("error text %q does not keep %q", err.Error(), line)
		}
	}
	// No Error: line at all: the tail of stderr is shown.
	err := newCommandError("doing y", nil, 1, []byte("panic: something\n"), "")
	if !strings.Contains(err.Error(), "panic: something") || !strings.Contains(err.Error(), "status 1") {
		t.Errorf("unclassified: %v", err)
	}
	if _, ours := smolvmErrorLine([]byte("Error: my own guest failure\n")); ours {
		t.Error("a guest's own Error: line was taken for smolvm's")
	}
	// A guest command that exits 2 after its own `error:` line (git does)
	// is not smolvm refusing its command line.
	if isUsageError([]byte("error: pathspec 'x' did not match any file(s) known to git\n")) {
		t.Error("a guest's error: line and exit 2 were taken for a usage error")
	}
}

func TestScrubEnv(t *testing.T) {
	in := []string{"PATH=/bin", "SMOLVM_CONFIG=/c", "SMOLVM_DATA_DIR=/d", "SMOLVM_FAKE_STATE=/s",
		"SMOLVM_PUBLISH_ADDR=0.0.0.0", "SMOLVM_GUEST_HOST_SERVICE=1:2", "SMOLVM_EGRESS_FLOOR=off",
		"SMOLVM_EGRESS_ALLOW_PRIVATE=1", "SMOLVM_ALLOW_HOST_LOOPBACK=1", "SMOLVM_NETWORK_GATEWAY=1.2.3.4",
		"SMOLVM_VM_UID_DROP=0", "SMOLVM_MACHINE_NAME=x", "SMOLVM_SOMETHING_NEW=1", "HTTPS_PROXY=http://p"}
	got := strings.Join(scrubEnv(in), " ")
	if got != "PATH=/bin SMOLVM_CONFIG=/c SMOLVM_DATA_DIR=/d SMOLVM_FAKE_STATE=/s HTTPS_PROXY=http://p" {
		t.Errorf("scrubEnv kept: %s", got)
	}
}

// TestCommandEnvIsScrubbed runs a stand-in smolvm that records its
// environment: a variable that would lift the egress floor never reaches
// it, whatever the user exported.
func TestCommandEnvIsScrubbed(t *testing.T) {
	dir := t.TempDir()
	bin, out := filepath.Join(dir, "smolvm"), filepath.Join(dir, "env")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nenv > "+out+"\necho '[]'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SMOLVM_EGRESS_FLOOR", "off")
	t.Setenv("SMOLVM_PUBLISH_ADDR", "0.0.0.0")
	if _, err := New(bin, WithEnv("SMOLVM_CONFIG=/x")).MachineList(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), "SMOLVM_EGRESS_FLOOR") || strings.Contains(string(b), "SMOLVM_PUBLISH_ADDR") || !strings.Contains(string(b), "SMOLVM_CONFIG=/x") {
		t.Errorf("smolvm saw:\n%s", b)
	}
}
