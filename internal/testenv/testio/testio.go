// Package testio holds the small helpers tests share that need nothing but
// the standard library, so that any package's tests may import it (the
// bundle's included) without the engine helpers of package testenv.
package testio

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer that a process or goroutine writes while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until the buffer holds want, and fails the test with what
// it holds when that takes longer than limit.
func (s *Buffer) WaitFor(t testing.TB, want string, limit time.Duration) {
	t.Helper()
	Eventually(t, limit, func() bool { return strings.Contains(s.String(), want) },
		func() string { return fmt.Sprintf("no %q in the output:\n%s", want, s.String()) })
}

// Eventually polls cond until it holds, and fails the test with what()
// when it does not within limit: a wait on a condition, never a guess at
// how long something takes.
func Eventually(t testing.TB, limit time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder records a test's failure instead of failing it, and stops at
// Fatalf as the real one would.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msg += fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Failure runs fn with a stand-in for t and returns what fn failed it with
// ("" when it passed): for the tests of test helpers, which must be able
// to fail.
func Failure(t testing.TB, fn func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.msg
}

// WaitPID waits for a file that a process writes its pid into (the probe's
// `workload FILE`), and returns the pid.
func WaitPID(t testing.TB, path string) int {
	t.Helper()
	var pid int
	Eventually(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, func() string { return path + " never held a pid" })
	return pid
}

// Gone reports whether process pid has exited (or is a zombie, which its
// parent has yet to reap).
func Gone(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || bytes.Contains(st, []byte(") Z"))
}

// WaitGone waits for process pid to exit, and kills it and fails the test
// when it does not within limit.
func WaitGone(t testing.TB, pid int, limit time.Duration) {
	t.Helper()
	Eventually(t, limit, func() bool { return Gone(pid) }, func() string {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Sprintf("process %d still runs", pid)
	})
}

// Echo serves TCP on loopback until the test ends: each connection gets
// banner first (as SSH and SMTP servers greet), then the echo of what it
// sends.
func Echo(t testing.TB, banner string) net.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() }) // a listener: closing it loses nothing
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }() // what it echoed is sent
				if _, err := io.WriteString(c, banner); err == nil {
					_, _ = io.Copy(c, c) // the peer's close ends it
				}
			}()
		}
	}()
	return ln.Addr()
}

// WriteFiles writes files (slash-separated path relative to dir: content)
// under dir, making the folders they need.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
