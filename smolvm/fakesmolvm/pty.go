package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/docker-bottle/docker-bottle/provider/guest/pty"
)

// attachPTY gives cmd a terminal, as smolvm's agent does for `exec -t`:
// its stdin, stdout and stderr are the slave, it leads a new session with
// it as controlling terminal. The caller's terminal (when stdin is one)
// goes raw and lends its size. It returns a function that copies output
// until the command's side closes and restores the caller's terminal.
func attachPTY(cmd *exec.Cmd, forwardStdin bool) (finish func(), err error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, err
	}
	if rows, cols, err := pty.Size(os.Stdin); err == nil {
		_ = pty.SetSize(master, rows, cols)
	}
	restore := func() {}
	if forwardStdin {
		if r, err := pty.MakeRaw(os.Stdin); err == nil {
			restore = r
		}
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	cmd.SysProcAttr.Setpgid = false // Setsid already makes a new group
	done := make(chan struct{})
	go func() {
		_, err := io.Copy(os.Stdout, master)
		// EIO is how a pty master reports that the slave side closed.
		if err != nil && !errors.Is(err, syscall.EIO) {
			fmt.Fprintf(os.Stderr, "warning: terminal: %v\n", err)
		}
		close(done)
	}()
	return func() {
		slave.Close()
		<-done
		master.Close()
		restore()
	}, nil
}
