package smolvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// ExecOptions is `smolvm machine exec --name N [-i] [-t] [-e K=V]... [-w DIR]
// -- CMD...`.
type ExecOptions struct {
	Name    string
	Command []string
	Env     []EnvVar
	Workdir string
	// User runs the command as a name of the image or a numeric
	// uid[:gid] (-u, smolvm 1.14.2 and later).
	User string
	// Interactive (-i) forwards Stdin; TTY (-t) asks for a guest terminal.
	// Without either, smolvm buffers all output until the command exits.
	Interactive bool
	TTY         bool
	// Stream (--stream) passes output on as it comes, without -i or -t.
	Stream bool
	// Detach (-d) starts the command in the background: smolvm prints its
	// PID and returns. It excludes Interactive, TTY and Stream.
	Detach bool
	// Timeout (--timeout) makes smolvm kill the command; the exit code is
	// then 124. Zero: smolvm's default.
	Timeout time.Duration
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// MachineExec runs a command in a running machine. It returns the guest
// command's exit code (0 included) with a nil error whenever the command
// ran, whatever it returned; err is non-nil only when smolvm itself failed
// (machine unknown or not running, bad options, cancelled context).
//
// The two are told apart by smolvm's failure line: exit status 1 with a
// last stderr line of the form `Error: <smolvm error>` (agent/config
// operation failed, vm not found, ...), or clap's usage error (exit 2 with
// its usage hint). A guest command printing exactly such a line and
// exiting 1 would be misread; docker bottle's own guest commands do not. A
// machine stopped while the command runs is ErrMachineStopped: smolvm
// reports the lost connection, not an exit code.
func (c *CLI) MachineExec(ctx context.Context, o ExecOptions) (int, error) {
	op := fmt.Sprintf("running a command in smolvm machine %q", o.Name)
	if err := ValidateName(o.Name); err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	if len(o.Command) == 0 {
		return -1, fmt.Errorf("%s: %w: no command", op, ErrInvalidOption)
	}
	if o.Detach && (o.Interactive || o.TTY || o.Stream) {
		return -1, fmt.Errorf("%s: %w: -d excludes -i, -t and --stream", op, ErrInvalidOption)
	}
	// exec has no -n short form: always --name.
	args := []string{"machine", "exec", "--name", o.Name}
	if o.Detach {
		args = append(args, "-d")
	}
	if o.Interactive {
		args = append(args, "-i")
	}
	if o.TTY {
		args = append(args, "-t")
	}
	if o.Stream {
		args = append(args, "--stream")
	}
	env, err := envArgs(o.Env)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	args = append(args, env...)
	if o.Workdir != "" {
		args = append(args, "-w", o.Workdir)
	}
	if err := c.checkUserFlag(o.User); err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	if o.User != "" {
		args = append(args, "--user", o.User)
	}
	if o.Timeout > 0 {
		args = append(args, "--timeout", strconv.FormatInt(int64((o.Timeout+time.Second-1)/time.Second), 10)+"s")
	}
	args = append(args, "--")
	args = append(args, o.Command...)

	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	cmd := c.command(ctx, invocation{args: args})
	if o.Interactive {
		cmd.Stdin = o.Stdin
	}
	cmd.Stdout = o.Stdout
	// stderr passes through, and its tail is kept to recognise smolvm's
	// own failure line.
	tail := &tailWriter{max: 8 << 10}
	if o.Stderr != nil {
		cmd.Stderr = io.MultiWriter(o.Stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	err = cmd.Run()
	if err == nil {
		return 0, nil
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, fmt.Errorf("%s: running %s: %w", op, c.path, err)
	}
	code := ee.ExitCode()
	stderr := tail.bytes()
	switch {
	case code == 2 && isUsageError(stderr):
		return -1, newCommandError(op, args, code, stderr, o.Name)
	case code == 1:
		if _, ours := smolvmErrorLine(stderr); ours {
			return -1, newCommandError(op, args, code, stderr, o.Name)
		}
	case code < 0:
		// Killed by a signal without a context cancel: report it like a
		// shell does.
		if st, ok := ee.Sys().(interface{ Signaled() bool }); ok && st.Signaled() {
			return -1, fmt.Errorf("%s: smolvm was killed: %w", op, err)
		}
	}
	return code, nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
