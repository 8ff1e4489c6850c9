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
			line = "error: unexpected argument '--allow-host' found"
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
}

func TestCheckKVM(t *testing.T) {
	dir := t.TempDir()
	if err := checkKVM(filepath.Join(dir, "kvm")); !errors.Is(err, ErrKVMUnavailable) || !strings.Contains(err.Error(), "modprobe") {
		t.Errorf("missing: %v", err)
	}
	rw := filepath.Join(dir, "rw")
	os.WriteFile(rw, nil, 0o600)
	if err := checkKVM(rw); err != nil {
		t.Errorf("read/write: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.WriteFile(ro, nil, 0o400)
		if err := checkKVM(ro); !errors.Is(err, ErrKVMPermission) {
			t.Errorf("not writable: %v", err)
		}
	}
}
