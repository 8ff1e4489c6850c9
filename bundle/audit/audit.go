// Package audit writes the bundle's audit trail: one JSON object per line,
// to a file in the stage dir, bounded by size. When the file would grow past
// its limit it is renamed to FILE.1 (replacing an older one) and a new file
// is started.
//
// The agent is hostile, and refusals cost it nothing: it could make lines
// until the record of what it did before is rotated away. So the record
// keeps what matters however many lines come after it:
//   - FILE.start holds the first lines of each run of the daemon (each Open),
//     which no rotation touches;
//   - FILE.keep (and FILE.keep.1) holds the lines that let something
//     through (allow decisions, pushes, approvals given), which refusals do
//     not rotate;
//   - identical refusals within a second are written once, then as one line
//     saying how many more came ("repeated", "repeated_since");
//   - when rotation removes lines, the new file starts with a line saying
//     how many ("event": "audit.dropped").
//
// FILE itself stays the whole record, in order, for as long as it lasts; the
// other files hold copies of its lines.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBytes bounds one audit file when the caller gives no limit.
const DefaultMaxBytes = 64 << 20

// Retention bounds, as parts of the file limit.
const (
	// keepDivisor: FILE.keep is bounded by max/keepDivisor.
	keepDivisor = 2
	// startDivisor: each run's start in FILE.start is bounded by
	// max/startDivisor.
	startDivisor = 64
	// maxRuns bounds the runs whose start FILE.start keeps; later runs say
	// so in FILE.
	maxRuns = 16
	// repeatWindow is how long identical refusals are counted rather than
	// written.
	repeatWindow = time.Second
	// maxRepeatKeys bounds the refusals counted at once; more distinct
	// ones are written as they come.
	maxRepeatKeys = 1024
)

// Event names of the lines the logger writes itself.
const (
	EventStart   = "audit.start"
	EventDropped = "audit.dropped"
)

// Logger appends JSON lines to a file. It is safe for concurrent use. A nil
// *Logger discards everything, so daemons can run without an audit file.
type Logger struct {
	mu   sync.Mutex
	path string
	max  int64
	main *file
	keep *file
	// start receives the first startMax bytes of this run; nil when full
	// or done.
	start     *os.File
	startLeft int64
	tees      []func(line []byte)
	now       func() time.Time

	repeats map[string]*repeat
	// order holds the repeats' keys by when their window started, oldest
	// first (with entries of repeats already flushed, skipped).
	order []queued
	flush *time.Timer
	// lost is the first error of a repeat's line, written outside Write
	// (Write's errors are its own record's, which its callers act on);
	// Close returns it.
	lost error
}

type queued struct {
	key     string
	started time.Time
}

// file is one rotating file and what it holds.
type file struct {
	path  string
	max   int64
	f     *os.File
	size  int64
	lines int64
	// dropped counts the lines rotation removed in this run.
	dropped int64
}

// repeat is a refusal seen within the window: written once, then counted.
type repeat struct {
	first   string // time of the first line counted
	last    string // time of the last line counted
	count   int
	sample  map[string]any
	started time.Time
}

// Open opens (appending) or creates the audit file at path with mode 0600,
// with FILE.keep and FILE.start next to it, and starts a run: FILE.start
// gets this run's first lines. maxBytes <= 0 means DefaultMaxBytes.
func Open(path string, maxBytes int64) (*Logger, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	l := &Logger{path: path, max: maxBytes, now: time.Now, repeats: map[string]*repeat{}}
	var err error
	if l.main, err = openFile(path, maxBytes); err != nil {
		return nil, err
	}
	// On a failure below nothing was written yet: closing loses nothing.
	if l.keep, err = openFile(path+".keep", max(maxBytes/keepDivisor, 1)); err != nil {
		l.main.close() //nolint:errcheck // see above
		return nil, err
	}
	if err := l.openStart(); err != nil {
		l.main.close() //nolint:errcheck // see above
		l.keep.close() //nolint:errcheck // see above
		return nil, err
	}
	return l, nil
}

func openFile(path string, maxBytes int64) (*file, error) {
	fl := &file{path: path, max: maxBytes}
	if err := fl.open(); err != nil {
		return nil, err
	}
	return fl, nil
}

func (fl *file) open() error {
	f, err := os.OpenFile(fl.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	n, size, err := countLines(f)
	if err != nil {
		f.Close() //nolint:errcheck // only read so far
		return fmt.Errorf("opening audit log: %w", err)
	}
	fl.f, fl.size, fl.lines = f, size, n
	return nil
}

func (fl *file) close() error {
	if fl.f == nil {
		return nil
	}
	err := fl.f.Close()
	fl.f = nil
	return err
}

// countLines counts the lines of an open file, reading it from the start.
func countLines(f *os.File) (lines, size int64, err error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, size)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if errors.Is(err, io.EOF) {
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

// openStart starts this run's part of FILE.start, unless maxRuns runs'
// starts are there already.
func (l *Logger) openStart() error {
	f, err := os.OpenFile(l.path+".start", os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	runs, err := countRuns(f)
	if err != nil {
		f.Close() //nolint:errcheck // only read so far
		return fmt.Errorf("opening audit log: %w", err)
	}
	now := l.now().UTC().Format(time.RFC3339Nano)
	if runs >= maxRuns {
		f.Close() //nolint:errcheck // only read
		return l.appendMain(mustJSON(map[string]any{"time": now, "event": EventStart, "run": runs + 1,
			"reason": fmt.Sprintf("the start of this run is not copied to %s.start, which keeps the starts of %d runs already", l.path, maxRuns)}))
	}
	l.start, l.startLeft = f, max(l.max/startDivisor, min(l.max, 4<<10))
	line := mustJSON(map[string]any{"time": now, "event": EventStart, "run": runs + 1, "pid": os.Getpid()})
	return l.writeStart(line)
}

// countRuns counts the runs FILE.start holds (its audit.start lines).
func countRuns(f *os.File) (int, error) {
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, 1<<62))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	marker := []byte(`"event":"` + EventStart + `"`)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), marker) {
			n++
		}
	}
	return n, sc.Err()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
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
	if l.main.f == nil {
		return fmt.Errorf("audit log %s is closed", l.path)
	}
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	if _, ok := fields["time"]; !ok {
		ts := l.now().UTC().Format(time.RFC3339Nano)
		fields["time"] = ts
		line = stampTime(line, ts)
	}
	if !Kept(fields) {
		if counted := l.countRepeat(fields); counted {
			return nil
		}
	}
	return l.write(line, Kept(fields))
}

// takeLost returns and forgets the error of a repeat's line. Call with l.mu
// held.
func (l *Logger) takeLost() error {
	err := l.lost
	l.lost = nil
	if err != nil {
		return fmt.Errorf("writing a line of repeated refusals: %w", err)
	}
	return nil
}

// stampTime puts "time" first in a JSON object.
func stampTime(line []byte, ts string) []byte {
	stamped := make([]byte, 0, len(line)+len(ts)+12)
	stamped = append(stamped, `{"time":`...)
	stamped = append(stamped, mustJSON(ts)...)
	if len(line) > 2 {
		stamped = append(stamped, ',')
	}
	return append(stamped, line[1:]...)
}

// write puts a line in FILE, FILE.keep when kept, and FILE.start while
// this run's start lasts, then hands it to the tees. Call with l.mu held.
func (l *Logger) write(line []byte, kept bool) error {
	if err := l.appendMain(line); err != nil {
		return err
	}
	var errs []error
	if kept {
		errs = append(errs, l.appendRotating(l.keep, line))
	}
	if l.start != nil {
		errs = append(errs, l.writeStart(line))
	}
	for _, fn := range l.tees {
		fn(line)
	}
	return errors.Join(errs...)
}

func (l *Logger) appendMain(line []byte) error { return l.appendRotating(l.main, line) }

// appendRotating appends a line to fl, rotating it first when it would
// grow past its limit; the new file then starts with a line saying what
// the rotation removed.
func (l *Logger) appendRotating(fl *file, line []byte) error {
	if fl.size > 0 && fl.size+int64(len(line))+1 > fl.max {
		dropped, err := rotate(fl)
		if err != nil {
			return err
		}
		if dropped.lines > 0 {
			fl.dropped += dropped.lines
			note := mustJSON(map[string]any{"time": l.now().UTC().Format(time.RFC3339Nano), "event": EventDropped,
				"file": filepath.Base(fl.path), "dropped_lines": dropped.lines, "dropped_bytes": dropped.size,
				"dropped_this_run": fl.dropped,
				"reason": fmt.Sprintf("rotated away: %s keeps two files of at most %d bytes; each run's start is in %s.start and what was let through in %s.keep",
					fl.path, fl.max, l.path, l.path)})
			if err := appendLine(fl, note); err != nil {
				return err
			}
			if fl == l.main {
				// Losing lines is itself worth keeping.
				if err := l.appendRotating(l.keep, note); err != nil {
					return err
				}
				for _, fn := range l.tees {
					fn(note)
				}
			}
		}
	}
	return appendLine(fl, line)
}

func appendLine(fl *file, line []byte) error {
	n, err := fl.f.Write(append(line[:len(line):len(line)], '\n'))
	fl.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	fl.lines++
	return nil
}

// removed is what a rotation removed for good.
type removed struct{ lines, size int64 }

// rotate renames fl's file to FILE.1 and starts a new one; it returns what
// the FILE.1 it replaced held.
func rotate(fl *file) (removed, error) {
	var gone removed
	if old, err := os.Open(fl.path + ".1"); err == nil {
		gone.lines, gone.size, err = countLines(old)
		old.Close() //nolint:errcheck // only read
		if err != nil {
			return gone, fmt.Errorf("rotating audit log: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return gone, fmt.Errorf("rotating audit log: %w", err)
	}
	if err := fl.close(); err != nil {
		return gone, fmt.Errorf("rotating audit log: %w", err)
	}
	if err := os.Rename(fl.path, fl.path+".1"); err != nil {
		return gone, fmt.Errorf("rotating audit log: %w", err)
	}
	return gone, fl.open()
}

// writeStart copies a line to this run's start until its room is used.
func (l *Logger) writeStart(line []byte) error {
	if int64(len(line))+1 > l.startLeft {
		err := l.start.Close()
		l.start = nil
		return err
	}
	n, err := l.start.Write(append(line[:len(line):len(line)], '\n'))
	l.startLeft -= int64(n)
	if err != nil {
		return fmt.Errorf("writing audit log: %w", err)
	}
	return nil
}

// Kept reports whether an audit line (decoded) records something let
// through, or the record itself: those lines go to FILE.keep, and the
// supervisor's merged stream keeps them apart from refusals as well.
func Kept(rec map[string]any) bool {
	s := func(k string) string { v, _ := rec[k].(string); return v }
	switch s("decision") {
	case "allow", "allow-once", "allow-always", "error":
		return true
	}
	switch ev := s("event"); {
	case ev == "push", s("kind") == "push" && strings.HasPrefix(ev, "approval."):
		return true
	case strings.HasPrefix(ev, "audit."), strings.HasPrefix(ev, "bundle."):
		return true
	}
	return false
}

// Volatile fields, left out when telling whether two refusals are the same.
var volatile = map[string]bool{"time": true, "duration_ms": true, "waited_ms": true, "bytes_up": true,
	"bytes_down": true, "bytes": true, "id": true}

// repeatKey is a refusal without what differs between identical ones: its
// time, durations, and the client's port.
func repeatKey(rec map[string]any) string {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if !volatile[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := rec[k]
		if k == "client" || k == "remote" || k == "requester" {
			if s, ok := v.(string); ok {
				v = withoutPort(s)
			}
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.Write(mustJSON(v))
		b.WriteByte(0)
	}
	return b.String()
}

// withoutPort drops a trailing ":port".
func withoutPort(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || strings.Trim(addr[i+1:], "0123456789") != "" {
		return addr
	}
	return addr[:i]
}

// countRepeat reports whether the refusal rec repeats one written within
// the window, and counts it if so; otherwise it starts a window for it.
// Call with l.mu held.
func (l *Logger) countRepeat(rec map[string]any) bool {
	key := repeatKey(rec)
	now := l.now()
	ts, _ := rec["time"].(string)
	if r, ok := l.repeats[key]; ok {
		if now.Sub(r.started) < repeatWindow {
			if r.count == 0 {
				r.first = ts
			}
			r.count++
			r.last = ts
			l.armFlush()
			return true
		}
		l.flushRepeat(key, r)
	}
	if len(l.repeats) >= maxRepeatKeys {
		l.flushExpired(now)
		if len(l.repeats) >= maxRepeatKeys {
			return false
		}
	}
	l.repeats[key] = &repeat{started: now, sample: rec}
	l.order = append(l.order, queued{key, now})
	l.armFlush()
	return false
}

// armFlush makes sure counted repeats are written once their window ends,
// even if nothing else is written. Call with l.mu held.
func (l *Logger) armFlush() {
	if l.flush != nil {
		return
	}
	l.flush = time.AfterFunc(repeatWindow, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.flush = nil
		if l.main.f == nil {
			return
		}
		l.flushExpired(l.now())
		if len(l.repeats) > 0 {
			l.armFlush()
		}
	})
}

// flushExpired writes and forgets the repeats whose window ended.
func (l *Logger) flushExpired(now time.Time) {
	for len(l.order) > 0 && now.Sub(l.order[0].started) >= repeatWindow {
		q := l.order[0]
		l.order = l.order[1:]
		if r, ok := l.repeats[q.key]; ok && r.started.Equal(q.started) {
			l.flushRepeat(q.key, r)
		}
	}
	if len(l.order) == 0 {
		l.order = nil // let the backing array go
	}
}

// flushRepeat forgets a repeat, writing one line for the refusals it
// counted: the first one's fields, with how many came and since when.
func (l *Logger) flushRepeat(key string, r *repeat) {
	delete(l.repeats, key)
	if r.count == 0 {
		return
	}
	rec := make(map[string]any, len(r.sample)+2)
	for k, v := range r.sample {
		rec[k] = v
	}
	rec["time"] = r.last
	rec["repeated"] = r.count
	rec["repeated_since"] = r.first
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if err := l.write(line, false); err != nil && l.lost == nil {
		l.lost = err
	}
}

// Close writes the repeats still counted and closes the files; its error
// includes that of a repeat line written earlier in the background. Later
// writes fail.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.main.f == nil {
		return nil
	}
	if l.flush != nil {
		l.flush.Stop()
		l.flush = nil
	}
	for key, r := range l.repeats {
		l.flushRepeat(key, r)
	}
	errs := []error{l.takeLost(), l.main.close(), l.keep.close()}
	if l.start != nil {
		errs = append(errs, l.start.Close())
		l.start = nil
	}
	return errors.Join(errs...)
}
