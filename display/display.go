// Package display carries what the operations of every command (the image
// pipeline's steps among them) are doing as events, so that a display
// chosen by the `--progress` flag (auto, tty, plain, quiet, json) can
// render them, as compose's cmd/display does. Producers never write to a
// terminal themselves.
package display

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/moby/term"
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
	// StageBottle carries the bottle's own step lines (bundle up, agent
	// started), which commands write as text.
	StageBottle Stage = "bottle"
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

// Display is a Writer that owns an output for the length of a command.
// Write prints text that is not an event (the plugin's step lines) the way
// the display wants it: above the live area of a terminal display, as is
// elsewhere. Close finishes the display (a terminal display draws its
// final frame and leaves the cursor below it); it is idempotent, and
// events and writes after it are printed as plain lines.
type Display interface {
	Writer
	io.Writer
	Close() error
}

// NewWriter returns the display for a `--progress` value: "tty", and
// "auto" when out is a terminal, update one line per object in place (see
// TTY); "plain" and "auto" elsewhere print one line per event.
func NewWriter(mode string, out io.Writer) (Display, error) {
	switch mode {
	case "", ModeAuto, ModeTTY, ModePlain:
		if UsesTTY(mode, out) {
			return TTY(out, TTYOptions{}), nil
		}
		return &plain{out: out}, nil
	case ModeQuiet:
		return discard{}, nil
	case ModeJSON:
		return &jsonLines{out: out}, nil
	}
	return nil, fmt.Errorf("unknown progress mode %q: use auto, tty, plain, quiet or json", mode)
}

// UsesTTY says whether NewWriter(mode, out) renders a live terminal
// display: then nothing else may draw on out while it is open (buildx,
// for one, must print plain lines, which the display scrolls).
func UsesTTY(mode string, out io.Writer) bool {
	switch mode {
	case ModeTTY:
		return true
	case "", ModeAuto:
		return IsTerminal(out)
	}
	return false
}

// IsTerminal says whether out is a terminal: the docker CLI's streams say
// so themselves, files are asked.
func IsTerminal(out io.Writer) bool {
	if t, ok := out.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	_, ok := term.GetFdInfo(out)
	return ok
}

// Plain writes one line per event: "[stage] id: text".
func Plain(out io.Writer) Writer { return &plain{out: out} }

type plain struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *plain) Event(e Event) {
	line := plainLine(e) + "\n"
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.out, line)
}

func (p *plain) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *plain) Close() error { return nil }

func plainLine(e Event) string {
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
	return b.String()
}

// JSON writes one JSON object per event and line.
func JSON(out io.Writer) Writer { return &jsonLines{out: out} }

type jsonLines struct {
	mu    sync.Mutex
	out   io.Writer
	steps io.WriteCloser
}

func (j *jsonLines) Event(e Event) {
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.out.Write(append(line, '\n'))
}

// Write takes the bottle's step lines: each becomes an event, so that
// `--progress json` prints nothing but JSON, one object a line.
func (j *jsonLines) Write(b []byte) (int, error) {
	j.mu.Lock()
	if j.steps == nil {
		j.steps = Lines(j, StageBottle, "")
	}
	steps := j.steps
	j.mu.Unlock()
	return steps.Write(b)
}

func (j *jsonLines) Close() error {
	j.mu.Lock()
	steps := j.steps
	j.mu.Unlock()
	if steps != nil {
		return steps.Close()
	}
	return nil
}

type discard struct{}

func (discard) Event(Event)                 {}
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Close() error                { return nil }

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
