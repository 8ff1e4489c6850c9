// Package audit writes the bundle's audit trail: one JSON object per line,
// to a file in the stage dir, bounded by size. When the file would grow past
// its limit it is renamed to FILE.1 (replacing an older one) and a new file
// is started, so at most twice the limit is kept on disk.
package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultMaxBytes bounds one audit file when the caller gives no limit.
const DefaultMaxBytes = 64 << 20

// Logger appends JSON lines to a file. It is safe for concurrent use. A nil
// *Logger discards everything, so daemons can run without an audit file.
type Logger struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
	tees []func(line []byte)
	now  func() time.Time
}

// Open opens (appending) or creates the audit file at path with mode 0600.
// maxBytes <= 0 means DefaultMaxBytes.
func Open(path string, maxBytes int64) (*Logger, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	l := &Logger{path: path, max: maxBytes, now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Logger) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening audit log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Tee registers fn to receive every line written from now on (without the
// newline). fn must not block and must not keep the slice.
func (l *Logger) Tee(fn func(line []byte)) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.tees = append(l.tees, fn)
	l.mu.Unlock()
}

// Write appends rec, which must marshal to a JSON object. A "time" field is
// added when rec lacks one, so every line can be ordered.
func (l *Logger) Write(rec any) error {
	if l == nil {
		return nil
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	if len(line) < 2 || line[0] != '{' {
		return fmt.Errorf("audit record must be a JSON object, got %T", rec)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !hasTime(line) {
		ts, _ := json.Marshal(l.now().UTC().Format(time.RFC3339Nano))
		stamped := make([]byte, 0, len(line)+len(ts)+10)
		stamped = append(stamped, `{"time":`...)
		stamped = append(stamped, ts...)
		if len(line) > 2 {
			stamped = append(stamped, ',')
		}
		line = append(stamped, line[1:]...)
	}
	if l.f == nil {
		return fmt.Errorf("audit log %s is closed", l.path)
	}
	if l.size > 0 && l.size+int64(len(line))+1 > l.max {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	line = append(line, '\n')
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	for _, fn := range l.tees {
		fn(line[:len(line)-1])
	}
	return nil
}

func (l *Logger) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	l.f = nil
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotating audit log: %w", err)
	}
	return l.open()
}

// Close closes the file. Later writes fail.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// hasTime reports whether the top-level object has a "time" key. Records are
// flat structs or maps, so a cheap decode of the keys is enough.
func hasTime(obj []byte) bool {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(obj, &keys); err != nil {
		return false
	}
	_, ok := keys["time"]
	return ok
}
