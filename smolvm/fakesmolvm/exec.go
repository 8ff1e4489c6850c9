package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

var execSpec = &cmdSpec{
	path:  "machine exec",
	usage: "machine exec [OPTIONS] <COMMAND>...",
	flags: []flagSpec{
		{long: "name", value: "NAME"}, // no -n on exec
		{long: "workdir", short: 'w', value: "DIR"},
		{long: "user", short: 'u', value: "USER"},
		{long: "env", short: 'e', value: "KEY=VALUE", multi: true},
		{long: "secret-env", value: "GUEST_VAR=HOST_VAR", multi: true},
		{long: "secret-file", value: "GUEST_VAR=PATH", multi: true},
		{long: "timeout", value: "DURATION"},
		{long: "interactive", short: 'i'},
		{long: "tty", short: 't'},
		{long: "stream"},
		{long: "detach", short: 'd'},
	},
	trailing:  varTrailing,
	trailReq:  true,
	conflicts: [][2]string{{"detach", "interactive"}, {"detach", "tty"}, {"detach", "stream"}},
}

// machineExec runs a command "in the guest": a host process chrooted into
// the machine's root filesystem. Its exit code becomes ours. -t gives it a
// pseudo-terminal (stdout and stderr both arrive on our stdout, as from a
// terminal).
func machineExec(args []string) {
	p := execSpec.parse(args)
	name := nameOr(p)
	r, ok := loadRecord(name)
	if !ok {
		fail("vm not found: %s", name)
	}
	if !vmAlive(r.PID, r.Name) {
		fail("agent operation failed: connect: machine '%s' is not running. Start it with 'smolvm machine start --name %s'; "+
			"if a start is already in progress, retry once it finishes.", name, name)
	}
	var timeout time.Duration
	if p.has("timeout") {
		d, err := parseDuration(p.str("timeout"))
		if err != nil {
			usageError(execSpec, "invalid value '%s' for '--timeout <DURATION>': %v", p.str("timeout"), err)
		}
		timeout = d
	}
	var env, secrets []string
	for _, e := range p.list("env") {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			v = os.Getenv(k) // bare KEY copies the host value
		}
		env = append(env, k+"="+v)
	}
	for _, s := range p.list("secret-env") {
		g, h, ok := strings.Cut(s, "=")
		v, set := os.LookupEnv(h)
		if !ok || g == "" || !set {
			fail("config operation failed: --secret-env: '%s': host variable not set", s)
		}
		secrets = append(secrets, g+"="+v)
	}
	for _, s := range p.list("secret-file") {
		g, f, ok := strings.Cut(s, "=")
		b, err := os.ReadFile(f)
		if !ok || g == "" || err != nil {
			fail("config operation failed: --secret-file: '%s': cannot read the file", s)
		}
		secrets = append(secrets, g+"="+strings.TrimRight(string(b), "\n"))
	}
	rootfs := fakestate.RootfsDir(stateDir(), name)
	user := r.User
	if p.has("user") {
		user = p.str("user")
	}
	cmd, err := guestCommand(rootfs, r, execEnv(r, secrets, env), p.str("workdir"), user, p.trailing)
	if err != nil {
		fail("agent operation failed: exec: %v", err)
	}

	if p.has("detach") {
		cmd.SysProcAttr.Setsid = true
		if err := cmd.Start(); err != nil {
			fail("agent operation failed: exec: %v", err)
		}
		fmt.Println(cmd.Process.Pid)
		return
	}

	interactive := p.has("interactive") || p.has("tty") || p.has("stream")
	if p.has("interactive") {
		cmd.Stdin = os.Stdin
	}
	var outBuf, errBuf bytes.Buffer
	if interactive {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	} else {
		// Without -i, -t or --stream smolvm returns output only when the
		// command has exited.
		cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	}
	// The guest command dies with us (Pdeathsig is per thread: pin it).
	runtime.LockOSThread()
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	finish := func() {}
	if p.has("tty") {
		if finish, err = attachPTY(cmd, p.has("interactive")); err != nil {
			fail("agent operation failed: exec: %v", err)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		finish()
		fail("agent operation failed: exec: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if timeout > 0 {
		timer = time.After(timeout)
	}
	timedOut := false
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case s := <-sigs:
			_ = syscall.Kill(-cmd.Process.Pid, s.(syscall.Signal))
		case <-timer:
			timedOut = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	finish()
	os.Stdout.Write(outBuf.Bytes())
	os.Stderr.Write(errBuf.Bytes())
	if timedOut {
		os.Exit(124)
	}
	// A machine stopped under the command: smolvm loses its connection to
	// the VM and says so, rather than giving the guest's exit code.
	if !vmAlive(r.PID, r.Name) {
		fail("agent operation failed: run interactive: connection to VM lost")
	}
	os.Exit(exitCode(waitErr))
}

var runSpec = &cmdSpec{
	path:  "machine run",
	usage: "machine run [OPTIONS] [-- <COMMAND>...]",
	flags: []flagSpec{
		{long: "image", short: 'I', value: "IMAGE"},
		{long: "cpus", value: "N"},
		{long: "mem", value: "MiB"},
		{long: "env", short: 'e', value: "KEY=VALUE", multi: true},
		{long: "net"},
	},
	trailing: lastTrailing,
}

// machineRun is the ephemeral `machine run --image DIR -- CMD` of a rootfs
// directory (what docker bottle's boot check uses): the command runs
// chrooted into DIR and its exit code becomes ours.
func machineRun(args []string) {
	p := runSpec.parse(args)
	dir := p.str("image")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || len(p.trailing) == 0 {
		fail("config operation failed: the fake runs only `machine run --image ROOTFS-DIR -- COMMAND`")
	}
	checkKVM("start machine")
	fmt.Fprintf(os.Stderr, "Starting ephemeral machine (vm-%08x)...\n", os.Getpid())
	cmd, err := guestCommand(dir, fakestate.Record{}, guestEnv([]string{defaultPath}, p.list("env")), "", "", p.trailing)
	if err != nil {
		fail("agent operation failed: run: %v", err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	os.Exit(exitCode(cmd.Run()))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fail("agent operation failed: exec: %v", err)
	return 1
}

// parseDuration accepts humantime-style values (30s, 5m, 1h30m, 500ms)
// and bare seconds.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("invalid duration")
	}
	return d, nil
}
