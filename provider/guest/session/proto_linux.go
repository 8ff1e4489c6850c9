package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The session socket speaks frames: a type byte, a big-endian uint32
// length, the payload. A client's first frame says what it wants (attach or
// probe); the server answers with hello (the session id), then, to an
// attached client, output and finally the agent's exit code.
const (
	frameAttach = 'A' // client: attach (empty)
	frameProbe  = 'P' // client: only the hello, then close (empty)
	frameInput  = 'I' // client: keystrokes
	frameResize = 'W' // client: rows and columns, uint16 each
	frameHello  = 'H' // server: the session id
	frameOutput = 'O' // server: the terminal's output
	frameExit   = 'X' // server: the agent's exit code, int32
)

// maxFrame bounds what a peer may make the other side allocate.
const maxFrame = 1 << 20

func encodeFrame(typ byte, payload []byte) []byte {
	b := make([]byte, 5+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload))) //nolint:gosec // G115: the sender's own payloads (a terminal read, the replay ring, an id), far below 4 GiB
	copy(b[5:], payload)
	return b
}

func writeFrame(w io.Writer, typ byte, payload []byte) error {
	_, err := w.Write(encodeFrame(typ, payload))
	return err
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("session protocol: a frame of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return h[0], b, nil
}

// sessionFiles are the files of a session directory.
type sessionFiles struct{ dir string }

func (f sessionFiles) log() string    { return filepath.Join(f.dir, "agent.log") }
func (f sessionFiles) socket() string { return filepath.Join(f.dir, "attach.sock") }
func (f sessionFiles) record() string { return filepath.Join(f.dir, "exit.json") }

// command holds the last session's command, which `session start` without
// a command runs again.
func (f sessionFiles) command() string { return filepath.Join(f.dir, "command.json") }

// sessionRecord is written when a session's agent has ended.
type sessionRecord struct {
	ID       string `json:"id"`
	ExitCode int    `json:"exit_code"`
	// LogOffset is where the session's output starts in the log (which
	// earlier sessions' output precedes).
	LogOffset int64 `json:"log_offset"`
}

func (f sessionFiles) readRecord() (sessionRecord, bool, error) {
	var r sessionRecord
	b, err := os.ReadFile(f.record())
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("reading the session's exit record %s: %w", f.record(), err)
	}
	return r, true, nil
}

func (f sessionFiles) writeRecord(r sessionRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := f.record() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.record())
}

// dial connects to the session's socket and sends the first frame (attach
// or probe); it returns the connection and the session's id. A missing
// socket or one nobody listens on (a session that ended with its machine)
// is errNoSession.
func (f sessionFiles) dial(first byte) (net.Conn, string, error) {
	conn, err := net.DialTimeout("unix", f.socket(), 2*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", errNoSession, err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeFrame(conn, first, nil); err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("%w: %v", errNoSession, err)
	}
	typ, id, err := readFrame(conn)
	if err != nil || typ != frameHello {
		conn.Close()
		return nil, "", fmt.Errorf("%w: no hello on %s (%v)", errNoSession, f.socket(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, string(id), nil
}

// probe reports the id of the running session, if one runs.
func (f sessionFiles) probe() (string, bool) {
	conn, id, err := f.dial(frameProbe)
	if err != nil {
		return "", false
	}
	conn.Close()
	return id, true
}

var errNoSession = errors.New("no agent session runs")
