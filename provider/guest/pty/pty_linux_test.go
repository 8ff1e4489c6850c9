package pty

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openPair(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestOpen: what is typed on the master reaches the slave as a line, and
// what the slave writes comes out of the master.
func TestOpen(t *testing.T) {
	m, s := openPair(t)
	if !IsTerminal(s) || !IsTerminal(m) {
		t.Fatal("a pty pair is not a terminal")
	}
	if _, err := m.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(s).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("the slave read %q, %v", line, err)
	}
	if _, err := s.Write([]byte("out")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	var got []byte
	// The master also gets the echo of "hello".
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !bytes.Contains(got, []byte("out")); {
		_ = m.SetReadDeadline(deadline)
		n, err := m.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the master: %v (%q so far)", err, got)
		}
	}
	if !bytes.Contains(got, []byte("out")) {
		t.Fatalf("the master read %q", got)
	}
}

// TestStaysInThePoller: the master stays non-blocking in Go's poller
// through every call, so closing it ends a read pending on it (the session
// server relies on it when the agent ends while a background process holds
// the terminal); Fd would have made it blocking.
func TestStaysInThePoller(t *testing.T) {
	m, _ := openPair(t)
	if err := SetSize(m, 24, 80); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Size(m); err != nil {
		t.Fatal(err)
	}
	_ = IsTerminal(m)
	var flags int
	if err := control(m, func(fd int) (err error) {
		flags, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the master is blocking: closing it would not end a pending read")
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Read(make([]byte, 16))
		done <- err
	}()
	m.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("the read ended with %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing the master did not end a read")
	}
}

// TestSize: a size set on the master is the slave's.
func TestSize(t *testing.T) {
	m, s := openPair(t)
	if err := SetSize(m, 33, 111); err != nil {
		t.Fatal(err)
	}
	rows, cols, err := Size(s)
	if err != nil || rows != 33 || cols != 111 {
		t.Fatalf("size %dx%d, %v; want 33x111", rows, cols, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, _, err := Size(r); err == nil {
		t.Error("a pipe has a terminal size")
	}
	if IsTerminal(r) {
		t.Error("a pipe is a terminal")
	}
}

// TestMakeRaw: raw mode passes keys through unprocessed (no echo, no line
// editing, no signals from Ctrl-C), and restore brings the old mode back.
func TestMakeRaw(t *testing.T) {
	_, s := openPair(t)
	before := termios(t, s)
	if before.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 {
		t.Fatalf("a new terminal is raw already: lflag %#x", before.Lflag)
	}
	restore, err := MakeRaw(s)
	if err != nil {
		t.Fatal(err)
	}
	raw := termios(t, s)
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG|unix.IEXTEN) != 0 || raw.Iflag&unix.ICRNL != 0 ||
		raw.Oflag&unix.OPOST != 0 || raw.Cc[unix.VMIN] != 1 {
		t.Errorf("not raw: %+v", raw)
	}
	restore()
	if after := termios(t, s); after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("not restored: %+v, was %+v", after, before)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := MakeRaw(r); err == nil {
		t.Error("a pipe was made raw")
	}
}

func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	var tio unix.Termios
	err := control(f, func(fd int) error {
		p, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err == nil {
			tio = *p
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tio
}
