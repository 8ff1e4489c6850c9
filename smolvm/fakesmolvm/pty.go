package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// openPTY allocates a pseudo-terminal pair, as smolvm's agent does for
// `exec -t`.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

// attachPTY gives cmd a terminal: its stdin, stdout and stderr are the
// slave, it leads a new session with it as controlling terminal. The
// caller's terminal (when stdin is one) goes raw and lends its size. It
// returns a function that copies output until the command's side closes
// and restores the caller's terminal.
func attachPTY(cmd *exec.Cmd, forwardStdin bool) (finish func(), err error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("allocate a terminal: %w", err)
	}
	in := int(os.Stdin.Fd())
	if ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
	restore := func() {}
	if forwardStdin {
		if old, err := unix.IoctlGetTermios(in, unix.TCGETS); err == nil {
			raw := *old
			raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
			raw.Oflag &^= unix.OPOST
			raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
			raw.Cflag &^= unix.CSIZE | unix.PARENB
			raw.Cflag |= unix.CS8
			raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
			if unix.IoctlSetTermios(in, unix.TCSETS, &raw) == nil {
				restore = func() { _ = unix.IoctlSetTermios(in, unix.TCSETS, old) }
			}
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
