package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest/pty"
)

// serverOptions say what `session start` runs and where.
type serverOptions struct {
	Dir  string
	ID   string
	Argv []string
	// Env of the agent; nil: the helper's own.
	Env []string
	// Replay is how much of the latest output a new attacher gets first.
	Replay int
	// Ready, when set, is closed once the socket listens and the agent
	// has started (tests wait on it).
	Ready chan<- struct{}
	// MaxLog bounds the log kept across sessions; 0: maxSessionLog.
	MaxLog int64
}

// maxSessionLog is the default bound of the session log, as a docker log
// driver's max-size.
const maxSessionLog = 64 << 20

// session is a running agent under its own terminal.
type session struct {
	files  sessionFiles
	id     string
	master *os.File
	log    *os.File

	mu      sync.Mutex
	ring    []byte
	replay  int
	clients map[*attached]struct{}
	ended   bool
	code    int
}

// attached is one attach client; out holds encoded frames for it.
type attached struct {
	conn   net.Conn
	out    chan []byte
	closed bool // out is closed; guarded by session.mu
}

// runSessionServer runs the agent under a new terminal until it exits: its
// output goes to the log and to attached clients, the socket takes attach
// clients, and the exit code is recorded. It returns the agent's exit code.
func runSessionServer(ctx context.Context, o serverOptions) (int, error) {
	if len(o.Argv) == 0 {
		return 0, errors.New("no command for the session")
	}
	if o.Replay <= 0 {
		o.Replay = 64 << 10
	}
	f := sessionFiles{dir: o.Dir}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return 0, fmt.Errorf("making the session directory: %w", err)
	}
	if id, ok := f.probe(); ok {
		return 0, fmt.Errorf("a session (id %s) already runs in %s: attach to it, or wait until it ends", id, o.Dir)
	}
	// A socket left by a session whose machine stopped, and the previous
	// session's record, make way for this one.
	if err := os.Remove(f.socket()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("removing the stale session socket: %w", err)
	}
	if err := os.Remove(f.record()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("removing the last session's exit record: %w", err)
	}
	ln, err := net.Listen("unix", f.socket())
	if err != nil {
		return 0, fmt.Errorf("listening for attach clients: %w", err)
	}
	defer os.Remove(f.socket())
	defer ln.Close()
	// Only the agent's user may attach (type into the agent).
	if err := os.Chmod(f.socket(), 0o600); err != nil {
		return 0, fmt.Errorf("securing the session socket: %w", err)
	}
	// The log is kept across sessions, and bounded across them as
	// docker's log drivers bound a container's: a log past the bound
	// becomes the one old log kept (agent.log.1) when a session starts.
	if o.MaxLog <= 0 {
		o.MaxLog = maxSessionLog
	}
	if st, err := os.Stat(f.log()); err == nil && st.Size() > o.MaxLog {
		if err := os.Rename(f.log(), f.log()+".1"); err != nil {
			return 0, fmt.Errorf("rotating the session log: %w", err)
		}
	}
	logf, err := os.OpenFile(f.log(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening the session log: %w", err)
	}
	defer logf.Close() //nolint:errcheck // unbuffered appends: each is written when its Write returns
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("opening the session log: %w", err)
	}
	master, slave, err := pty.Open()
	if err != nil {
		return 0, err
	}
	defer master.Close()
	// A terminal's size until the first attacher gives its own.
	_ = pty.SetSize(master, 24, 80)

	s := &session{files: f, id: o.ID, master: master, log: logf, replay: o.Replay, clients: map[*attached]struct{}{}}
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	if lp, err := exec.LookPath(o.Argv[0]); err == nil {
		cmd.Path = lp
	}
	cmd.Env = o.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// The agent leads a session of its own whose controlling terminal is
	// the slave: Ctrl-C typed by an attacher and window-size changes reach
	// it as they would from a real terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		fmt.Fprintf(logf, "docker bottle: the agent could not start: %v\r\n", err)
		code := 127
		if rerr := f.writeRecord(sessionRecord{ID: o.ID, ExitCode: code, LogOffset: offset}); rerr != nil {
			return code, rerr
		}
		return code, nil
	}
	slave.Close()

	go s.accept(ln)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				s.output(buf[:n])
			}
			if err != nil {
				// EIO: every holder of the slave has closed it.
				return
			}
		}
	}()
	if o.Ready != nil {
		close(o.Ready)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		// The helper is asked to stop (the machine stops): so is the
		// agent's whole session.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case werr = <-waited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			werr = <-waited
		}
	}
	// Output still in the terminal is read; a background process that
	// keeps the terminal open does not hold the session up.
	select {
	case <-readDone:
	case <-time.After(time.Second):
	}
	master.Close()
	<-readDone
	code := exitStatus(werr)
	rerr := f.writeRecord(sessionRecord{ID: o.ID, ExitCode: code, LogOffset: offset})
	s.end(code)
	return code, rerr
}

// exitStatus is a process's exit code as a shell reports it (128+signal).
func exitStatus(err error) int {
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
	return 1
}

// output keeps p in the log and the replay buffer and sends it to every
// attached client. A client too slow to take it is dropped rather than
// holding the agent up.
func (s *session) output(p []byte) {
	// A full disk must not stop the agent: the log loses output then.
	_, _ = s.log.Write(p)
	frame := encodeFrame(frameOutput, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, p...)
	if len(s.ring) > s.replay {
		s.ring = append(s.ring[:0:0], s.ring[len(s.ring)-s.replay:]...)
	}
	for c := range s.clients {
		select {
		case c.out <- frame:
		default:
			s.dropLocked(c)
		}
	}
}

func (s *session) dropLocked(c *attached) {
	delete(s.clients, c)
	if !c.closed {
		c.closed = true
		close(c.out)
	}
}

// end tells every client the exit code and lets their queues drain.
func (s *session) end(code int) {
	s.mu.Lock()
	s.ended, s.code = true, code
	frame := encodeFrame(frameExit, exitPayload(code))
	var writers []*attached
	for c := range s.clients {
		select {
		case c.out <- frame:
		default:
		}
		writers = append(writers, c)
		s.dropLocked(c)
	}
	s.mu.Unlock()
	// The writers close their connections once their queue is empty; give
	// them a moment so that clients get the exit code.
	deadline := time.After(3 * time.Second)
	for _, c := range writers {
		for {
			select {
			case <-deadline:
				return
			default:
			}
			if len(c.out) == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
}

func exitPayload(code int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(int32(code))) //nolint:gosec // G115: an exit status travels as a two's complement int32
	return b
}

func (s *session) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.serve(conn)
	}
}

func (s *session) serve(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, _, err := readFrame(conn)
	if err != nil || (typ != frameAttach && typ != frameProbe) {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.mu.Lock()
	if typ == frameProbe || s.ended {
		ended, code, ring := s.ended, s.code, append([]byte(nil), s.ring...)
		s.mu.Unlock()
		_ = writeFrame(conn, frameHello, []byte(s.id))
		if typ == frameAttach && ended {
			// Too late for the agent, in time for its last output.
			if len(ring) > 0 {
				_ = writeFrame(conn, frameOutput, ring)
			}
			_ = writeFrame(conn, frameExit, exitPayload(code))
		}
		conn.Close()
		return
	}
	c := &attached{conn: conn, out: make(chan []byte, 256)}
	c.out <- encodeFrame(frameHello, []byte(s.id))
	if len(s.ring) > 0 {
		c.out <- encodeFrame(frameOutput, s.ring)
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()

	go func() {
		for f := range c.out {
			if _, err := conn.Write(f); err != nil {
				break
			}
		}
		conn.Close()
		s.mu.Lock()
		s.dropLocked(c)
		s.mu.Unlock()
	}()
	for {
		typ, b, err := readFrame(conn)
		if err != nil {
			break
		}
		switch typ {
		case frameInput:
			_, _ = s.master.Write(b)
		case frameResize:
			if len(b) == 4 {
				rows, cols := binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint16(b[2:])
				if rows > 0 && cols > 0 {
					// The kernel sends SIGWINCH to the agent's foreground
					// process group.
					_ = pty.SetSize(s.master, rows, cols)
				}
			}
		}
	}
	s.mu.Lock()
	s.dropLocked(c)
	s.mu.Unlock()
}
