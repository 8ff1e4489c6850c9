package display

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/moby/term"
)

// TTYOptions tunes the terminal display.
type TTYOptions struct {
	// Width returns the terminal's width in columns, asked at every
	// redraw so a resize is followed; nil asks out (a docker CLI stream or
	// a file). 80 when it cannot say.
	Width func() int
	// Interval is the time between redraws of the live area; 0 means
	// 100ms.
	Interval time.Duration
}

// TTY returns a display for a terminal, as compose's and buildx's: one line
// per object (stage and ID) in a live area at the bottom, updated in
// place, with a spinner and bytes while working, a check mark when done and
// ERROR on failure. Log events and Write's lines scroll above the live
// area. New and finished lines are drawn at once, progress at most once per
// Interval from one goroutine. When nothing is working any more the live
// area is left on screen as it is and a new one starts below, so that the
// terminal is free between pipeline runs (the agent's output never meets a
// redraw). Lines are cut to the terminal's width so that wrapping never
// breaks the redraw. The cursor is never hidden: a killed process leaves a
// usable terminal.
func TTY(out io.Writer, o TTYOptions) Display {
	d := &ttyDisplay{
		out:     out,
		width:   o.Width,
		byKey:   map[rowKey]*row{},
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		cond:    runewidth.NewCondition(),
	}
	// Ambiguous-width runes (…) count as one column whatever the locale:
	// the display only prints those it knows to be narrow.
	d.cond.EastAsianWidth = false
	if d.width == nil {
		d.width = termWidth(out)
	}
	interval := o.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	go d.loop(interval)
	return d
}

type rowKey struct {
	stage Stage
	id    string
}

type row struct{ e Event }

type ttyDisplay struct {
	mu      sync.Mutex
	out     io.Writer
	width   func() int
	cond    *runewidth.Condition
	rows    []*row // the live area, in order of first appearance
	byKey   map[rowKey]*row
	drawn   int // lines of the live area on screen, the cursor below them
	frame   int // spinner frame
	dirty   bool
	partial []byte // Write's unfinished line
	closed  bool

	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const (
	// Cursor movements and erasures (ECMA-48): up n lines, erase the line,
	// erase from the cursor to the end of the screen.
	escUp        = "\x1b[%dA"
	escClearLine = "\x1b[2K"
	escClearDown = "\x1b[J"
)

func (d *ttyDisplay) Event(e Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		_, _ = io.WriteString(d.out, sanitize(plainLine(e))+"\n")
		return
	}
	if e.Status == Log {
		d.above(sanitize(e.Text))
		return
	}
	d.settle(e.Stage)
	k := rowKey{e.Stage, e.ID}
	r, seen := d.byKey[k]
	if !seen {
		r = &row{}
		d.byKey[k] = r
		d.rows = append(d.rows, r)
	}
	r.e = e
	if seen && e.Status == Working {
		// Progress: the next tick draws it.
		d.dirty = true
		return
	}
	d.flush("")
	if d.working() == 0 {
		d.freeze()
	}
}

// settle drops the rows still working in other stages than the one an
// event comes from: the pipeline's stages run one after the other, so their
// work is over. (A producer may finish an object under another ID than it
// worked on; its own Done line says how it ended.)
func (d *ttyDisplay) settle(stage Stage) {
	kept := d.rows[:0]
	for _, r := range d.rows {
		if r.e.Status == Working && r.e.Stage != stage {
			delete(d.byKey, rowKey{r.e.Stage, r.e.ID})
			continue
		}
		kept = append(kept, r)
	}
	clear(d.rows[len(kept):])
	d.rows = kept
}

func (d *ttyDisplay) working() int {
	n := 0
	for _, r := range d.rows {
		if r.e.Status == Working {
			n++
		}
	}
	return n
}

// freeze leaves the live area on screen for good: its lines become part
// of the scrolled output and the next event starts a new live area.
func (d *ttyDisplay) freeze() {
	d.rows, d.drawn, d.dirty = nil, 0, false
	clear(d.byKey)
}

// Write prints whole lines above the live area; a last line without a
// newline waits for the rest or for Close.
func (d *ttyDisplay) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return d.out.Write(p)
	}
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(d.partial[:i]), "\r")
		d.partial = d.partial[i+1:]
		d.above(sanitize(line))
	}
	return len(p), nil
}

// Close draws the final frame (lines still working keep their last state,
// without a spinner) and leaves the cursor below it. Later events and
// writes are printed as plain lines.
func (d *ttyDisplay) Close() error {
	d.once.Do(func() {
		close(d.stop)
		<-d.stopped
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.partial) > 0 {
			d.above(sanitize(strings.TrimRight(string(d.partial), "\r")))
			d.partial = nil
		}
		d.closed = true
		d.flush("")
		d.freeze()
	})
	return nil
}

func (d *ttyDisplay) loop(interval time.Duration) {
	defer close(d.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.mu.Lock()
			if w := d.working(); w > 0 || d.dirty {
				if w > 0 {
					d.frame++
				}
				d.flush("")
			}
			d.mu.Unlock()
		}
	}
}

// above prints a line above the live area and draws the live area again
// below it, in one write.
func (d *ttyDisplay) above(line string) {
	d.flush(line + "\n")
}

// flush moves to the top of the live area, prints text there (it scrolls
// up with the terminal), and draws the live area below it. Called with mu
// held.
func (d *ttyDisplay) flush(text string) {
	var b strings.Builder
	if d.drawn > 0 {
		b.WriteString("\r")
		fmt.Fprintf(&b, escUp, d.drawn)
		if text != "" {
			b.WriteString(escClearDown)
		}
	}
	b.WriteString(text)
	width := d.cols()
	label := d.labelWidth(width)
	for _, r := range d.rows {
		b.WriteString(escClearLine)
		b.WriteString(d.line(r.e, width, label))
		b.WriteString("\n")
	}
	if d.drawn > len(d.rows) && text == "" {
		// The live area shrank: erase what is left of the old one.
		b.WriteString(escClearDown)
	}
	d.drawn, d.dirty = len(d.rows), false
	if b.Len() > 0 {
		_, _ = io.WriteString(d.out, b.String())
	}
}

func (d *ttyDisplay) cols() int {
	w := d.width()
	if w <= 0 {
		w = 80
	}
	return w
}

func label(e Event) string {
	if e.ID == "" {
		return "[" + string(e.Stage) + "]"
	}
	return "[" + string(e.Stage) + "] " + sanitize(e.ID)
}

// labelWidth aligns the rows' details, within half the width.
func (d *ttyDisplay) labelWidth(width int) int {
	n := 0
	for _, r := range d.rows {
		n = max(n, d.cond.StringWidth(label(r.e)))
	}
	return min(n, width/2)
}

// line renders one row, cut to width-1 columns: a terminal that wraps at
// the last column would otherwise move the cursor and break the redraw.
func (d *ttyDisplay) line(e Event, width, labelWidth int) string {
	var icon, detail string
	text := sanitize(e.Text)
	switch e.Status {
	case Working:
		icon = "-" // final frame: no spinner
		if !d.closed {
			icon = spinner[d.frame%len(spinner)]
		}
		detail = text
		switch {
		case e.Total > 0:
			detail = join(detail, bar(e.Current, e.Total, 20)+" "+Bytes(e.Current)+"/"+Bytes(e.Total))
		case e.Current > 0:
			detail = join(detail, Bytes(e.Current))
		}
	case Done:
		icon = "✔"
		if text == "" {
			text = "done"
		}
		detail = text
		if e.Current > 0 {
			detail += " (" + Bytes(e.Current) + ")"
		}
	case Error:
		icon = "✘"
		detail = join("ERROR", text)
	}
	l := d.cond.Truncate(label(e), labelWidth, "…")
	l += strings.Repeat(" ", max(0, labelWidth-d.cond.StringWidth(l)))
	return d.cond.Truncate(icon+" "+l+"  "+detail, max(1, width-1), "…")
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

// bar draws a progress bar of n cells, as docker pull does.
func bar(cur, total int64, n int) string {
	done := int(min(cur, total) * int64(n) / total)
	if done >= n {
		return "[" + strings.Repeat("=", n) + "]"
	}
	return "[" + strings.Repeat("=", done) + ">" + strings.Repeat(" ", n-done-1) + "]"
}

// sanitize keeps a tool's text from moving the cursor: escape sequences
// and control characters are removed, tabs become spaces.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			// CSI: parameters and intermediates up to a final byte.
			i += 2
			for i < len(rs) && (rs[i] < 0x40 || rs[i] > 0x7e) {
				i++
			}
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == ']':
			// OSC: up to BEL or ST.
			i += 2
			for i < len(rs) && rs[i] != 0x07 && !(rs[i] == 0x1b && i+1 < len(rs) && rs[i+1] == '\\') {
				i++
			}
			if i < len(rs) && rs[i] == 0x1b {
				i++
			}
		case r == 0x1b:
			i++ // a two-byte sequence
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// termWidth asks out for its width: the docker CLI's streams know it, a
// file is asked through its descriptor.
func termWidth(out io.Writer) func() int {
	if s, ok := out.(interface{ GetTtySize() (uint, uint) }); ok {
		return func() int {
			_, w := s.GetTtySize()
			return int(w)
		}
	}
	if fd, ok := term.GetFdInfo(out); ok {
		return func() int {
			ws, err := term.GetWinsize(fd)
			if err != nil {
				return 0
			}
			return int(ws.Width)
		}
	}
	return func() int { return 0 }
}
