package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
)

var _ backend.Dialer = Docker{}

// ExecEngine is what Dial asks of the engine: docker/cli's client of any
// context kind (unix socket, tcp with TLS, ssh) has it.
type ExecEngine interface {
	ExecCreate(ctx context.Context, container string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
}

// maxDialStderr bounds what is kept of the dial subcommand's stderr: its
// ready marker or its one-line error.
const maxDialStderr = 4 << 10

// maxFrame bounds one frame of the engine's multiplexed stream, which
// stdcopy buffers whole: the engine sends at most 32 KiB at a time.
const maxFrame = 1 << 20

// Dial connects to a service of the bottle's bundle, port being the
// service's port in the bundle's network namespace (plan.SupervisePort,
// plan.GatePort, plan.ProxyPort), through the engine API: no published
// port is used, so it works wherever the engine is.
func (d Docker) Dial(ctx context.Context, p plan.Plan, port int) (net.Conn, error) {
	e, ok := d.Engine.(ExecEngine)
	if !ok {
		return nil, fmt.Errorf("bottle %s: this engine client cannot exec in the bundle, so its services cannot be dialled", p.Slug)
	}
	return DialContainer(ctx, e, p.Bundle.Container, bringup.BinaryPath, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// DialContainer runs `bin dial addr` (bin being the bundle binary's path
// in the container) in a running container through the engine API, as
// `kubectl port-forward` reaches a pod's port, and returns the exec's
// streams as a connection to addr in the container's network namespace.
// ctx bounds the connecting only, as net.Dialer's does. Closing the
// connection's write half (CloseWrite) closes the far side's; how the exec
// failed (its stderr, its exit code) is the error of Dial or of a Read.
func DialContainer(ctx context.Context, e ExecEngine, container, bin, addr string) (net.Conn, error) {
	fail := func(err error) error { return fmt.Errorf("dialling %s in container %s: %w", addr, container, err) }
	ex, err := e.ExecCreate(ctx, container, client.ExecCreateOptions{
		Cmd: []string{bin, guest.SubcommandDial, addr}, AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, fail(err)
	}
	at, err := e.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fail(err)
	}
	c := &execConn{hr: at.HijackedResponse, ready: make(chan struct{}), ended: make(chan struct{})}
	c.stderr.onMarker = func() { close(c.ready) }
	pr, pw := io.Pipe()
	c.out = pr
	go func() {
		// The engine multiplexes stdout and stderr on the one stream.
		_, err := stdcopy.StdCopy(readyWriter{c.ready, pw}, &c.stderr, &boundedFrames{r: at.Reader})
		switch {
		case c.closed.Load():
			// Closed on this side: how the exec ends is no one's concern.
			err = net.ErrClosed
		case err == nil:
			err = c.exitError(e, ex.ID)
		}
		c.err = err
		close(c.ended)
		pw.CloseWithError(err)
	}()
	select {
	case <-c.ready:
		return c, nil
	case <-c.ended:
		c.Close() //nolint:errcheck,gosec // the exec ended; c.err says how
		if c.err == nil {
			return nil, fail(errors.New("the dial subcommand ended without connecting"))
		}
		return nil, fail(c.err)
	case <-ctx.Done():
		c.Close() //nolint:errcheck,gosec // ctx.Err() says why
		return nil, fail(ctx.Err())
	}
}

// exitError is how the exec ended when its stream did: nil for exit code
// 0, else its stderr and exit code. The stream can end a moment before the
// engine records the exit, so it asks again, briefly.
func (c *execConn) exitError(e ExecEngine, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		in, err := e.ExecInspect(ctx, id, client.ExecInspectOptions{})
		switch {
		case err != nil:
			return fmt.Errorf("reading how the dial ended: %w", err)
		case !in.Running && in.ExitCode == 0:
			return nil
		case !in.Running:
			msg := strings.TrimSpace(strings.TrimPrefix(c.stderr.String(), strings.TrimSpace(guest.DialReadyMarker)))
			if msg == "" {
				msg = "no message"
			}
			return fmt.Errorf("exit code %d: %s", in.ExitCode, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading how the dial ended: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// execConn is an exec's hijacked stream as a net.Conn: writes go to its
// stdin, reads come from its demultiplexed stdout.
type execConn struct {
	hr     client.HijackedResponse
	out    *io.PipeReader
	stderr markerBuffer
	ready  chan struct{}
	ended  chan struct{}
	err    error // how the exec ended; read after ended is closed
	once   sync.Once
	closed atomic.Bool
}

func (c *execConn) Read(b []byte) (int, error)  { return c.out.Read(b) }
func (c *execConn) Write(b []byte) (int, error) { return c.hr.Conn.Write(b) }

// CloseWrite ends the exec's stdin, which the dial subcommand passes on as
// its own half close.
func (c *execConn) CloseWrite() error { return c.hr.CloseWrite() }

func (c *execConn) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		err = c.hr.Conn.Close()
		c.out.Close() //nolint:errcheck,gosec // io.PipeReader.Close never fails
	})
	return err
}

func (c *execConn) LocalAddr() net.Addr  { return c.hr.Conn.LocalAddr() }
func (c *execConn) RemoteAddr() net.Addr { return c.hr.Conn.RemoteAddr() }

// Deadlines apply to the engine connection: one that passes ends the
// stream (what net/http's transport and git's clients expect of a
// deadline they set: the request fails).
func (c *execConn) SetDeadline(t time.Time) error      { return c.hr.Conn.SetDeadline(t) }
func (c *execConn) SetReadDeadline(t time.Time) error  { return c.hr.Conn.SetReadDeadline(t) }
func (c *execConn) SetWriteDeadline(t time.Time) error { return c.hr.Conn.SetWriteDeadline(t) }

// boundedFrames passes the engine's multiplexed stream through, failing
// at a frame header that announces more than maxFrame bytes.
type boundedFrames struct {
	r    io.Reader
	left int64 // bytes of the current frame still to pass
	hdr  [8]byte
	n    int    // bytes of hdr read
	out  []byte // of a checked header, what is still to pass
}

func (b *boundedFrames) Read(p []byte) (int, error) {
	if len(b.out) > 0 {
		m := copy(p, b.out)
		b.out = b.out[m:]
		return m, nil
	}
	if b.left == 0 {
		// A header, read whole before any of it passes.
		for b.n < len(b.hdr) {
			m, err := b.r.Read(b.hdr[b.n:])
			b.n += m
			if err != nil && b.n < len(b.hdr) {
				if b.n > 0 && errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
		}
		size := int64(b.hdr[4])<<24 | int64(b.hdr[5])<<16 | int64(b.hdr[6])<<8 | int64(b.hdr[7])
		if size > maxFrame {
			return 0, fmt.Errorf("the engine sent a frame of %d bytes, more than the %d it sends", size, maxFrame)
		}
		b.n, b.left, b.out = 0, size, b.hdr[:]
		return b.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	m, err := b.r.Read(p)
	b.left -= int64(m)
	return m, err
}

// readyWriter passes the exec's stdout on once it is connected: output
// before that is not the connection's, and would block the stream that
// carries the marker.
type readyWriter struct {
	ready <-chan struct{}
	w     io.Writer
}

func (r readyWriter) Write(p []byte) (int, error) {
	select {
	case <-r.ready:
		return r.w.Write(p)
	default:
		return 0, errors.New("the dial subcommand wrote output before it connected")
	}
}

// markerBuffer keeps the first maxDialStderr bytes of the dial's stderr
// and calls onMarker once they start with guest.DialReadyMarker.
type markerBuffer struct {
	mu       sync.Mutex
	b        bytes.Buffer
	seen     bool
	onMarker func()
}

func (m *markerBuffer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if room := maxDialStderr - m.b.Len(); room > 0 {
		m.b.Write(p[:min(len(p), room)])
	}
	if !m.seen && strings.HasPrefix(m.b.String(), guest.DialReadyMarker) {
		m.seen = true
		m.onMarker()
	}
	return len(p), nil
}

func (m *markerBuffer) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// DialContext is a net/http transport's DialContext whose every
// connection is DialContainer's to port on the container's loopback,
// whatever address is asked.
func DialContext(e ExecEngine, container, bin string, port int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return DialContainer(ctx, e, container, bin, to)
	}
}
