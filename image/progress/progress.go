// Package progress carries what the image pipeline is doing as events, so
// that a display chosen by the `--progress` flag (auto, tty, plain, quiet,
// json) can render them. Producers never write to a terminal themselves.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Stage names the pipeline step an event belongs to.
type Stage string

// The pipeline's stages, in the order a cold run goes through them.
const (
	StageBuild  Stage = "build"
	StageExport Stage = "export"
	StageLayer  Stage = "layer"
	StagePush   Stage = "push"
	StagePack   Stage = "pack"
	StageCache  Stage = "cache"
)

// Status is the state of the thing an event is about.
type Status string

// Statuses, as compose's display uses them.
const (
	Working Status = "working"
	Done    Status = "done"
	Error   Status = "error"
	// Log marks a line of a tool's own output (builder, smolvm).
	Log Status = "log"
)

// Event is one thing that happened. ID names the object (a layer digest, an
// image, an artifact) so a display can update one line per object.
type Event struct {
	Stage   Stage  `json:"stage"`
	ID      string `json:"id,omitempty"`
	Status  Status `json:"status"`
	Text    string `json:"text,omitempty"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// Writer receives events. Implementations must be safe for concurrent use:
// layers are exported and pushed in parallel.
type Writer interface {
	Event(Event)
}

// WriterFunc adapts a function to a Writer.
type WriterFunc func(Event)

// Event calls f(e).
func (f WriterFunc) Event(e Event) { f(e) }

// Discard drops every event (`--progress quiet`).
var Discard Writer = WriterFunc(func(Event) {})

// Modes accepted by NewWriter, as for `docker compose --progress`.
const (
	ModeAuto  = "auto"
	ModeTTY   = "tty"
	ModePlain = "plain"
	ModeQuiet = "quiet"
	ModeJSON  = "json"
)

// NewWriter returns the display for a `--progress` value. tty output is
// rendered as plain lines for now: the events carry all a richer display
// needs, and plain lines never garble a log.
func NewWriter(mode string, out io.Writer) (Writer, error) {
	switch mode {
	case "", ModeAuto, ModeTTY, ModePlain:
		return Plain(out), nil
	case ModeQuiet:
		return Discard, nil
	case ModeJSON:
		return JSON(out), nil
	}
	return nil, fmt.Errorf("unknown progress mode %q: use auto, tty, plain, quiet or json", mode)
}

// Plain writes one line per event: "[stage] id: text".
func Plain(out io.Writer) Writer {
	var mu sync.Mutex
	return WriterFunc(func(e Event) {
		var b strings.Builder
		fmt.Fprintf(&b, "[%s]", e.Stage)
		if e.ID != "" {
			fmt.Fprintf(&b, " %s:", e.ID)
		}
		if e.Text != "" {
			b.WriteString(" " + e.Text)
		}
		if e.Total > 0 {
			fmt.Fprintf(&b, " (%s/%s)", Bytes(e.Current), Bytes(e.Total))
		} else if e.Current > 0 {
			fmt.Fprintf(&b, " (%s)", Bytes(e.Current))
		}
		if e.Status == Error {
			b.WriteString(" ERROR")
		}
		b.WriteByte('\n')
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(out, b.String())
	})
}

// JSON writes one JSON object per event and line.
func JSON(out io.Writer) Writer {
	var mu sync.Mutex
	return WriterFunc(func(e Event) {
		line, err := json.Marshal(e)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.Write(append(line, '\n'))
	})
}

// Bytes formats n in binary units, as docker does for sizes.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Lines returns a writer that turns each line written to it into a Log
// event of the given stage: for the output of builders and smolvm. Call
// Close to flush a last line without a newline.
func Lines(w Writer, stage Stage, id string) io.WriteCloser {
	return &lineWriter{w: w, stage: stage, id: id}
}

type lineWriter struct {
	mu    sync.Mutex
	w     Writer
	stage Stage
	id    string
	buf   []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineWriter) emit(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	l.w.Event(Event{Stage: l.stage, ID: l.id, Status: Log, Text: line})
}

func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
	return nil
}
