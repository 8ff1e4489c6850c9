package docker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// fakeExec is an engine whose exec is run by a function of the test,
// speaking the engine's multiplexed stream over a real TCP connection
// (which has half close, as the engine's has).
type fakeExec struct {
	t    *testing.T
	run  func(stdin io.Reader, stdout, stderr io.Writer) int
	cmd  []string
	mu   sync.Mutex
	code *int
}

func (f *fakeExec) ExecCreate(_ context.Context, _ string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	f.cmd = o.Cmd
	return client.ExecCreateResult{ID: "exec1"}, nil
}

func (f *fakeExec) ExecAttach(context.Context, string, client.ExecAttachOptions) (client.ExecAttachResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return client.ExecAttachResult{}, err
	}
	defer ln.Close()
	near, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return client.ExecAttachResult{}, err
	}
	far, err := ln.Accept()
	if err != nil {
		return client.ExecAttachResult{}, err
	}
	f.t.Cleanup(func() { near.Close(); far.Close() })
	go func() {
		code := f.run(far, &frames{w: far, kind: stdcopy.Stdout}, &frames{w: far, kind: stdcopy.Stderr})
		f.mu.Lock()
		f.code = &code
		f.mu.Unlock()
		far.Close()
	}()
	return client.ExecAttachResult{HijackedResponse: client.HijackedResponse{Conn: near, Reader: bufio.NewReader(near)}}, nil
}

func (f *fakeExec) ExecInspect(context.Context, string, client.ExecInspectOptions) (client.ExecInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == nil {
		return client.ExecInspectResult{Running: true}, nil
	}
	return client.ExecInspectResult{ExitCode: *f.code}, nil
}

// frames writes as the engine multiplexes an exec's output: a header of
// the stream's kind and the length, then the bytes.
type frames struct {
	w    io.Writer
	kind stdcopy.StdType
}

func (f *frames) Write(p []byte) (int, error) {
	hdr := make([]byte, 8)
	hdr[0] = byte(f.kind)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.w.Write(append(hdr, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// The exec's stdout is the connection's read side, demultiplexed from its
// stderr; CloseWrite reaches the exec as the end of its stdin; the exec
// runs the bundle binary's dial subcommand.
func TestDialContainerIsAStream(t *testing.T) {
	f := &fakeExec{t: t, run: func(in io.Reader, out, errw io.Writer) int {
		io.WriteString(errw, guest.DialReadyMarker)
		got, _ := io.ReadAll(in)
		io.WriteString(out, "echo "+string(got))
		return 0
	}}
	c, err := DialContainer(context.Background(), f, "bundle", "/bottle-bundle", "127.0.0.1:8419")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if strings.Join(f.cmd, " ") != "/bottle-bundle dial 127.0.0.1:8419" {
		t.Errorf("exec'd %q", f.cmd)
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "echo ping" {
		t.Errorf("read %q, %v; want %q", got, err, "echo ping")
	}
}

// How the exec failed is the caller's error: before it connected, Dial's;
// after, a Read's. Both carry its stderr and exit code.
func TestDialContainerSaysHowTheExecFailed(t *testing.T) {
	f := &fakeExec{t: t, run: func(_ io.Reader, _, errw io.Writer) int {
		io.WriteString(errw, "bottle-bundle dial: dial tcp 127.0.0.1:9: connect: connection refused\n")
		return 1
	}}
	_, err := DialContainer(context.Background(), f, "bundle", "/bottle-bundle", "127.0.0.1:9")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "exit code 1") ||
		!strings.Contains(err.Error(), "container bundle") {
		t.Errorf("Dial of a refused port: %v", err)
	}

	f = &fakeExec{t: t, run: func(_ io.Reader, out, errw io.Writer) int {
		io.WriteString(errw, guest.DialReadyMarker)
		io.WriteString(out, "partial")
		io.WriteString(errw, "bottle-bundle dial: read: connection reset by peer\n")
		return 1
	}}
	c, err := DialContainer(context.Background(), f, "bundle", "/bottle-bundle", "127.0.0.1:8419")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if string(got) != "partial" || err == nil || !strings.Contains(err.Error(), "connection reset by peer") || !strings.Contains(err.Error(), "exit code 1") {
		t.Errorf("read %q, %v; want the bytes sent and then the exec's error", got, err)
	}
}

// A stream that breaks the engine's framing is an error, not a hang or a
// huge buffer: output before the marker, a frame longer than any the
// engine sends.
func TestDialContainerRefusesABrokenStream(t *testing.T) {
	for stream, want := range map[string]string{
		"\x01\x00\x00\x00\x00\x00\x00\x02hi": "before it connected",
		"\x01\x00\x00\x00\xff\xff\xff\xff":   "a frame of 4294967295 bytes",
	} {
		f := &fakeExec{t: t, run: func(_ io.Reader, out, _ io.Writer) int {
			out.(*frames).w.Write([]byte(stream))
			return 0
		}}
		_, err := DialContainer(context.Background(), f, "bundle", "/bottle-bundle", "127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("stream %q: %v, want %q", stream, err, want)
		}
	}
}

// A dial that never connects is bounded by Dial's context.
func TestDialContainerIsBoundedByTheContext(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	f := &fakeExec{t: t, run: func(io.Reader, io.Writer, io.Writer) int { <-hold; return 0 }}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := DialContainer(ctx, f, "bundle", "/bottle-bundle", "10.0.0.1:1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial that never connects: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v past a 100ms context", d)
	}
}

// Whatever the engine's stream holds (frames of any kind and length, cut
// anywhere), Dial returns, with a connection or an error, and keeps at
// most maxDialStderr of the exec's stderr.
func FuzzDialStream(f *testing.F) {
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x1ebottle-bundle dial: connected\n\x01\x00\x00\x00\x00\x00\x00\x02hi"), 0)
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x05nope\n"), 1)
	f.Add([]byte("\x01\x00\x00\x00\xff\xff\xff\xff"), 2)
	f.Fuzz(func(t *testing.T, stream []byte, code int) {
		fe := &fakeExec{t: t, run: func(_ io.Reader, out, _ io.Writer) int {
			out.(*frames).w.Write(stream)
			return code
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialContainer(ctx, fe, "bundle", "/bottle-bundle", "127.0.0.1:1")
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("Dial did not return when the stream ended")
		}
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
		if n := len(c.(*execConn).stderr.String()); n > maxDialStderr {
			t.Errorf("kept %d bytes of stderr", n)
		}
	})
}
