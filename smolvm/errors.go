package smolvm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns for one of these
// conditions matches it with errors.Is, and its text carries a remedy.
var (
	// ErrNotFound: no smolvm binary on PATH or at $DOCKER_BOTTLE_SMOLVM.
	ErrNotFound = errors.New("smolvm not found")
	// ErrCelestoSmolVM: the `smolvm` found is CelestoAI's unrelated Python
	// SmolVM, not smol-machines' smolvm.
	ErrCelestoSmolVM = errors.New("this smolvm is CelestoAI's Python SmolVM, not smol-machines' smolvm")
	// ErrBadVersion: `smolvm --version` printed something unparseable.
	ErrBadVersion = errors.New("cannot read the smolvm version")
	// ErrTooOld: the smolvm version is below MinVersion.
	ErrTooOld = errors.New("smolvm is too old")
	// ErrKVMUnavailable: /dev/kvm is missing (no KVM module, or no
	// hardware virtualisation).
	ErrKVMUnavailable = errors.New("kvm not available")
	// ErrKVMPermission: /dev/kvm exists but the user cannot open it
	// read/write.
	ErrKVMPermission = errors.New("kvm permission denied")
	// ErrAlreadyExists: a machine of that name exists or is being created.
	ErrAlreadyExists = errors.New("machine already exists")
	// ErrMachineNotFound: smolvm knows no machine of that name.
	ErrMachineNotFound = errors.New("machine not found")
	// ErrNotRunning: the machine exists but is not running.
	ErrNotRunning = errors.New("machine not running")
	// ErrBootFailed: the hypervisor opened but the microVM did not boot
	// (for example a nested hypervisor that cannot run smolvm's guest
	// kernel). No machine can run on this host.
	ErrBootFailed = errors.New("the microVM did not boot")
	// ErrLibraries: smolvm's VM monitor could not load libkrun and
	// libkrunfw (as root it runs as a uid of its own, which must be able
	// to read them and every directory above them).
	ErrLibraries = errors.New("smolvm cannot load its libraries")
	// ErrMachineStopped: the machine stopped (or its VM died) while a
	// command ran in it; smolvm reports the lost connection, not an exit
	// code.
	ErrMachineStopped = errors.New("the machine stopped while the command ran")
	// ErrUsage: smolvm rejected the command line (clap, exit 2). This is a
	// bug in this package or a smolvm whose flags changed.
	ErrUsage = errors.New("smolvm rejected the command line")
	// ErrInvalidName: a machine name breaks smolvm's naming rules.
	ErrInvalidName = errors.New("invalid machine name")
	// ErrSecretEnv: a guest variable whose name looks like a secret was
	// about to be passed with -e (stored or shown in plain text).
	ErrSecretEnv = errors.New("refusing to pass a secret-looking variable with -e")
	// ErrInvalidOption: a request this package refuses before calling
	// smolvm (bad image reference, conflicting options, ...).
	ErrInvalidOption = errors.New("invalid smolvm option")
)

// CommandError is a failed smolvm invocation. Message is smolvm's own
// `Error: ...` line, verbatim (or clap's `error: ...` line for a usage
// error); Op says what the plugin was doing.
type CommandError struct {
	Op       string   // what the plugin was doing, e.g. `creating machine "bottle-x"`
	Args     []string // smolvm arguments (never secrets: see Env)
	ExitCode int
	Message  string // smolvm's Error: line, verbatim
	Stderr   string // the rest of stderr, for debugging
	Remedy   string // what the user can do, when known
	kind     error  // one of the sentinels, or nil
}

func (e *CommandError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("smolvm exited with status %d", e.ExitCode)
		if tail := lastLines(e.Stderr, 3); tail != "" {
			msg += ": " + tail
		}
	}
	s := e.Op + ": " + msg
	if e.Remedy != "" {
		s += " (" + e.Remedy + ")"
	}
	return s
}

// Unwrap lets errors.Is match the sentinel this failure was classified as.
func (e *CommandError) Unwrap() error { return e.kind }

// knownErrorPrefixes are the Display forms of smolvm's error enum
// (src/data/errors.rs at v1.9.3; the same on 1.32.2). A final stderr line `Error: <one of these>`
// is smolvm's own failure, not a guest command's output.
var knownErrorPrefixes = []string{
	"vm creation failed:", "vm not found:", "hypervisor not available:",
	"invalid vm state:", "rootfs operation failed:", "rootfs not found:",
	"storage operation failed:", "disk not found:", "mount operation failed:",
	"invalid mount path:", "mount source not found:", "config operation failed:",
	"database operation failed:", "database not available:", "command '",
	"agent operation failed:", "kvm not available:", "kvm permission denied:",
	"io operation failed:",
}

// smolvmErrorLine returns the last `Error: ...` line of stderr if it is one
// of smolvm's own error forms.
func smolvmErrorLine(stderr []byte) (string, bool) {
	line := lastErrorLine(stderr, "Error: ")
	if line == "" {
		return "", false
	}
	rest := strings.TrimPrefix(line, "Error: ")
	for _, p := range knownErrorPrefixes {
		if strings.HasPrefix(rest, p) {
			return line, true
		}
	}
	return line, false
}

func lastErrorLine(b []byte, prefix string) string {
	var found string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); strings.HasPrefix(l, prefix) {
			found = l
		}
	}
	return found
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// newCommandError classifies a failed invocation from its exit code and
// stderr.
func newCommandError(op string, args []string, code int, stderr []byte, machine string) *CommandError {
	e := &CommandError{Op: op, Args: args, ExitCode: code, Stderr: string(stderr)}
	if code == 2 && isUsageError(stderr) {
		e.Message = lastErrorLine(stderr, "error: ")
		e.kind = ErrUsage
		e.Remedy = "this smolvm does not accept the flags docker bottle uses; check `smolvm --version` against the supported range"
		return e
	}
	line, _ := smolvmErrorLine(stderr)
	e.Message = line
	e.kind, e.Remedy = classify(strings.TrimPrefix(line, "Error: "), machine)
	return e
}

// isUsageError tells clap's refusal of a command line (exit 2) from a
// guest command that exits 2 after printing its own `error:` line (git and
// many CLIs do): clap always adds its usage or help hint after the line.
func isUsageError(stderr []byte) bool {
	if lastErrorLine(stderr, "error: ") == "" {
		return false
	}
	s := string(stderr)
	return strings.Contains(s, "Usage: ") || strings.Contains(s, "For more information, try '--help'")
}

// Remedies shared by the KVM checks of this package and smolvm's own
// failures.
const (
	remedyKVMMissing    = "load the KVM module (`sudo modprobe kvm_intel` or `kvm_amd`) and enable virtualisation in the firmware, or use --backend docker"
	remedyKVMPermission = "give your user read/write access to /dev/kvm (`sudo usermod -aG kvm $USER`, then log in again), or use --backend docker"
	// Run as root, smolvm starts each VM's monitor as a uid of its own,
	// which reaches /dev/kvm only through the kvm group (observed on
	// 1.32.2: `KvmContext(KvmOpen(Error(13)))` with /dev/kvm root:root 0600).
	remedyKVMGroup = "smolvm runs each VM as an unprivileged user of its own that opens /dev/kvm through the kvm group: " +
		"make /dev/kvm root:kvm mode 0660 as udev does (`sudo groupadd -f -r kvm; sudo chgrp kvm /dev/kvm; sudo chmod 0660 /dev/kvm`), or use --backend docker"
	// Observed on 1.32.2 installed under a root home of mode 0700: the
	// monitor's own uid cannot reach the libraries next to the binary.
	remedyLibraries = "smolvm runs each VM as an unprivileged user of its own, which must be able to read libkrun and libkrunfw " +
		"and every directory above them (a home directory of mode 0700 hides them): install smolvm where every user can read it " +
		"(`make tools` puts it under /usr/local/lib/docker-bottle when run as root) or point SMOLVM_LIB_DIR at such a copy, or use --backend docker"
	remedyBoot = "this host's hypervisor cannot run smolvm's guest kernel (a nested or paravirtualised KVM, for example); " +
		"run bottles with --backend docker here, or on a host with hardware virtualisation"
)

func classify(msg, machine string) (error, string) { //nolint:revive,staticcheck // the error is a kind (a sentinel), not a failure
	// On `machine start` smolvm wraps these in "agent operation failed:
	// start machine: ...", so they are matched anywhere in the line.
	switch {
	case strings.Contains(msg, "kvm not available"):
		return ErrKVMUnavailable, remedyKVMMissing
	case strings.Contains(msg, "kvm permission denied"):
		return ErrKVMPermission, remedyKVMPermission
	case strings.Contains(msg, "KvmOpen(Error(13))"), strings.Contains(msg, "KvmOpen(Error(1))"):
		return ErrKVMPermission, remedyKVMGroup
	case strings.Contains(msg, "libkrun/libkrunfw not found"):
		return ErrLibraries, remedyLibraries
	case strings.Contains(msg, "KVM_EXIT_INTERNAL_ERROR"), strings.Contains(msg, "before the agent was ready"),
		strings.Contains(msg, "agent did not become ready"):
		return ErrBootFailed, remedyBoot
	case strings.Contains(msg, "connection to VM lost"):
		return ErrMachineStopped, fmt.Sprintf("the machine stopped; start it again with `smolvm machine start --name %s`", machine)
	case strings.Contains(msg, "already exists"):
		return ErrAlreadyExists, fmt.Sprintf("remove it with `smolvm machine delete --name %s -f` or choose another name", machine)
	case strings.Contains(msg, "is not running"):
		return ErrNotRunning, fmt.Sprintf("start it with `smolvm machine start --name %s`", machine)
	case strings.HasPrefix(msg, "vm not found"), strings.HasSuffix(msg, "' not found"):
		return ErrMachineNotFound, "list machines with `smolvm machine ls`"
	}
	return nil, ""
}
