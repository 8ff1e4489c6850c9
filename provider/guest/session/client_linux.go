package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/provider/guest/pty"
)

// attachOptions say how `session attach` reaches the session and the user.
type attachOptions struct {
	Dir string
	// ID is the session to attach to, waited for up to Wait (the plugin
	// attaches right after starting it); empty: the session that runs now.
	ID   string
	Wait time.Duration
	In   io.Reader
	Out  io.Writer
	Err  io.Writer
	// Term is the user's terminal (stdin) when it is one: it goes raw and
	// lends its size to the agent's.
	Term *os.File
	// Resize receives a value when the user's terminal changes size
	// (SIGWINCH).
	Resize <-chan os.Signal
}

type attachResult struct {
	Code     int
	Detached bool
}

// Detach keys, as docker attach's default: Ctrl-P Ctrl-Q.
const (
	keyCtrlP = 0x10
	keyCtrlQ = 0x11
)

// detachKeys finds Ctrl-P Ctrl-Q in the user's input, across reads. A
// Ctrl-P is held back until the next key says whether it detaches.
type detachKeys struct{ pending bool }

func (d *detachKeys) filter(p []byte) (out []byte, detach bool) {
	for _, c := range p {
		if d.pending {
			d.pending = false
			if c == keyCtrlQ {
				return out, true
			}
			out = append(out, keyCtrlP)
		}
		if c == keyCtrlP {
			d.pending = true
			continue
		}
		out = append(out, c)
	}
	return out, false
}

// attach relays the user's terminal to the session until the agent exits
// (its exit code) or the user detaches.
func attach(ctx context.Context, o attachOptions) (attachResult, error) {
	f := sessionFiles{dir: o.Dir}
	deadline := time.Now().Add(o.Wait)
	var other string
	for {
		conn, id, err := f.dial(frameAttach)
		if err == nil {
			if o.ID == "" || id == o.ID {
				return relay(ctx, o, f, conn, id)
			}
			conn.Close()
			other = id
		} else {
			rec, ok, rerr := f.readRecord()
			if rerr != nil {
				return attachResult{}, rerr
			}
			if ok && (o.ID == "" || rec.ID == o.ID) {
				if o.ID != "" {
					// The agent ended before this attach got there: its
					// output is in the log.
					if err := copyLogFrom(f, rec.LogOffset, o.Out); err != nil {
						return attachResult{}, err
					}
				} else {
					fmt.Fprintf(o.Err, "docker bottle: the agent's session has ended with exit code %d; its output is in the logs\n", rec.ExitCode)
				}
				return attachResult{Code: rec.ExitCode}, nil
			}
		}
		if !time.Now().Before(deadline) {
			switch {
			case other != "":
				return attachResult{}, fmt.Errorf("another session (id %s) runs in %s, not %s", other, o.Dir, o.ID)
			case o.ID != "":
				return attachResult{}, fmt.Errorf("the agent's session %s did not start within %s (see its log in %s)", o.ID, o.Wait, f.log())
			}
			return attachResult{}, fmt.Errorf("%w in %s: start the bottle first", errNoSession, o.Dir)
		}
		select {
		case <-ctx.Done():
			return attachResult{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func copyLogFrom(f sessionFiles, offset int64, out io.Writer) error {
	lf, err := os.Open(f.log())
	if err != nil {
		return fmt.Errorf("reading the session log: %w", err)
	}
	defer lf.Close() //nolint:errcheck // only read
	if _, err := lf.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(out, lf)
	return err
}

func relay(ctx context.Context, o attachOptions, f sessionFiles, conn io.ReadWriteCloser, id string) (attachResult, error) {
	defer conn.Close()
	if o.Term != nil {
		restore, err := pty.MakeRaw(o.Term)
		if err != nil {
			return attachResult{}, err
		}
		defer restore()
	}
	var wmu sync.Mutex
	send := func(typ byte, b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(conn, typ, b)
	}
	sendSize := func() {
		if o.Term == nil {
			return
		}
		if rows, cols, err := pty.Size(o.Term); err == nil && rows > 0 && cols > 0 {
			b := make([]byte, 4)
			binary.BigEndian.PutUint16(b[:2], rows)
			binary.BigEndian.PutUint16(b[2:], cols)
			_ = send(frameResize, b)
		}
	}
	sendSize()
	done := make(chan struct{})
	defer close(done)
	detached := make(chan struct{})
	go func() {
		var keys detachKeys
		buf := make([]byte, 32<<10)
		for {
			n, err := o.In.Read(buf)
			if n > 0 {
				data, detach := keys.filter(buf[:n])
				if len(data) > 0 && send(frameInput, data) != nil {
					return
				}
				if detach {
					close(detached)
					conn.Close()
					return
				}
			}
			if err != nil {
				// End of the user's input: the agent keeps its terminal
				// (docker attach does the same).
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case <-o.Resize:
				sendSize()
			case <-ctx.Done():
				conn.Close()
				return
			case <-done:
				return
			}
		}
	}()
	for {
		typ, b, err := readFrame(conn)
		if err != nil {
			select {
			case <-detached:
				return attachResult{Detached: true}, nil
			default:
			}
			if ctx.Err() != nil {
				return attachResult{}, ctx.Err()
			}
			if rec, ok, _ := f.readRecord(); ok && rec.ID == id {
				return attachResult{Code: rec.ExitCode}, nil
			}
			return attachResult{}, fmt.Errorf("lost the agent's session %s (did its machine stop?): %w", id, err)
		}
		switch typ {
		case frameOutput:
			if _, err := o.Out.Write(b); err != nil {
				return attachResult{}, fmt.Errorf("writing the agent's output: %w", err)
			}
		case frameExit:
			if len(b) != 4 {
				return attachResult{}, errors.New("session protocol: a bad exit frame")
			}
			return attachResult{Code: int(int32(binary.BigEndian.Uint32(b)))}, nil //nolint:gosec // G115: the code travels as a two's complement int32
		}
	}
}

// logsOptions say what `session logs` prints.
type logsOptions struct {
	Dir    string
	Follow bool
	// Tail is how many lines from the end; negative: all.
	Tail int
	Out  io.Writer
	Poll time.Duration
}

// sessionLogs prints the session log (every session's output, oldest
// first), following it while a session runs.
func sessionLogs(ctx context.Context, o logsOptions) error {
	f := sessionFiles{dir: o.Dir}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	lf, err := os.Open(f.log())
	if errors.Is(err, fs.ErrNotExist) {
		// No session has written anything yet.
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the session log: %w", err)
	}
	defer lf.Close() //nolint:errcheck // only read
	if o.Tail >= 0 {
		off, err := tailOffset(lf, o.Tail)
		if err != nil {
			return fmt.Errorf("reading the session log: %w", err)
		}
		if _, err := lf.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	if _, err := io.Copy(o.Out, lf); err != nil {
		return err
	}
	for o.Follow {
		// Probed before the copy: once no session runs, this copy has
		// everything it wrote.
		_, live := f.probe()
		if _, err := io.Copy(o.Out, lf); err != nil {
			return err
		}
		if !live {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
	}
	return nil
}

// tailOffset is where the last n lines of f start (a final newline does not
// start an empty line).
func tailOffset(f *os.File, n int) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n == 0 {
		return size, nil
	}
	buf := make([]byte, 32<<10)
	count := 0
	for pos := size; pos > 0; {
		chunk := int64(len(buf))
		if chunk > pos {
			chunk = pos
		}
		pos -= chunk
		if _, err := f.ReadAt(buf[:chunk], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := chunk - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == size-1 {
				continue
			}
			if count++; count == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}

// sessionStatus says whether a session runs, or how the last one ended.
func sessionStatus(dir string) (guest.SessionStatus, error) {
	f := sessionFiles{dir: dir}
	if id, ok := f.probe(); ok {
		return guest.SessionStatus{ID: id, Running: true}, nil
	}
	rec, ok, err := f.readRecord()
	if err != nil || !ok {
		return guest.SessionStatus{}, err
	}
	code := rec.ExitCode
	return guest.SessionStatus{ID: rec.ID, ExitCode: &code}, nil
}

// waitSession waits until the session id has started (or has already
// ended).
func waitSession(ctx context.Context, dir, id string, timeout time.Duration) error {
	f := sessionFiles{dir: dir}
	deadline := time.Now().Add(timeout)
	for {
		got, live := f.probe()
		if live && got == id {
			return nil
		}
		if rec, ok, err := f.readRecord(); err != nil {
			return err
		} else if ok && rec.ID == id && !live {
			return nil
		}
		if !time.Now().Before(deadline) {
			if live {
				return fmt.Errorf("another session (id %s) runs in %s, not %s", got, dir, id)
			}
			return fmt.Errorf("the agent's session %s did not start within %s (see its log in %s)", id, timeout, f.log())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
