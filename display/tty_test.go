package display_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/display/displaytest"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// newTTY is a display of a fixed width whose ticker never fires during a
// test: every frame on screen comes from an event, a write or Close.
func newTTY(width int) (display.Display, *testio.Buffer) {
	var buf testio.Buffer
	return display.TTY(&buf, display.TTYOptions{Width: func() int { return width }, Interval: time.Hour}), &buf
}

// newTickingTTY is a display whose ticker fires every millisecond; in a
// synctest bubble, of the bubble's clock.
func newTickingTTY(width int) (display.Display, *testio.Buffer) {
	var buf testio.Buffer
	return display.TTY(&buf, display.TTYOptions{Width: func() int { return width }, Interval: time.Millisecond}), &buf
}

func screen(t *testing.T, out string, width int) []string {
	t.Helper()
	s := displaytest.Replay(out, width)
	if len(s.Unhandled) > 0 {
		t.Errorf("unexpected escape sequences %q in %q", s.Unhandled, out)
	}
	return s.Lines()
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestTTYUpdatesLinesInPlace(t *testing.T) {
	d, buf := newTTY(80)
	d.Event(display.Event{Stage: display.StageExport, ID: "abc", Status: display.Working, Text: "exporting", Total: 1000})
	d.Event(display.Event{Stage: display.StageExport, ID: "layer 1", Status: display.Working, Total: 4 << 20})
	equal(t, "first frame", screen(t, buf.String(), 80), []string{
		"⠋ [export] abc      exporting [>                   ] 0B/1000B",
		"⠋ [export] layer 1  [>                   ] 0B/4.0MiB",
	})
	d.Event(display.Event{Stage: display.StageExport, ID: "layer 1", Status: display.Done, Text: "stored", Current: 4 << 20})
	// The finished line is drawn at once, over the working one.
	out := buf.String()
	if !strings.Contains(out, "\r\x1b[2A\x1b[2K") {
		t.Errorf("no move up over the live area: %q", out)
	}
	equal(t, "after done", screen(t, out, 80), []string{
		"⠋ [export] abc      exporting [>                   ] 0B/1000B",
		"✔ [export] layer 1  stored (4.0MiB)",
	})
	d.Event(display.Event{Stage: display.StageExport, ID: "abc", Status: display.Done, Text: "exported", Current: 1000})
	d.Close()
	lines := screen(t, buf.String(), 80)
	equal(t, "final", lines, []string{
		"✔ [export] abc      exported (1000B)",
		"✔ [export] layer 1  stored (4.0MiB)",
	})
	row, col := displaytest.Replay(buf.String(), 80).Cursor()
	if row != len(lines) || col != 0 {
		t.Errorf("cursor at %d:%d, want below the %d lines", row, col, len(lines))
	}
}

func TestTTYLogsScrollAboveTheLiveArea(t *testing.T) {
	d, buf := newTTY(80)
	d.Event(display.Event{Stage: display.StageBuild, ID: "agent:1", Status: display.Working, Text: "building"})
	d.Event(display.Event{Stage: display.StageBuild, ID: "agent:1", Status: display.Log, Text: "Step 1/2 : FROM scratch"})
	fmt.Fprint(d, "image: building the agent image\nand a line in two ")
	fmt.Fprint(d, "writes\n")
	d.Event(display.Event{Stage: display.StageBuild, ID: "agent:1", Status: display.Log, Text: "Step 2/2 : COPY a /a"})
	equal(t, "live", screen(t, buf.String(), 80), []string{
		"Step 1/2 : FROM scratch",
		"image: building the agent image",
		"and a line in two writes",
		"Step 2/2 : COPY a /a",
		"⠋ [build] agent:1  building",
	})
	d.Event(display.Event{Stage: display.StageBuild, ID: "agent:1", Status: display.Error, Text: "COPY failed"})
	fmt.Fprint(d, "no newline")
	d.Close()
	equal(t, "final", screen(t, buf.String(), 80), []string{
		"Step 1/2 : FROM scratch",
		"image: building the agent image",
		"and a line in two writes",
		"Step 2/2 : COPY a /a",
		"✘ [build] agent:1  ERROR COPY failed",
		"no newline",
	})
}

func TestTTYTruncatesToTheWidth(t *testing.T) {
	const width = 30
	d, buf := newTTY(width)
	long := "a very long text that a terminal of thirty columns would wrap"
	d.Event(display.Event{Stage: display.StagePush, ID: "127.0.0.1:5000/bottle/agent", Status: display.Working, Text: long, Current: 1, Total: 2})
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Working, Text: long})
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Log, Text: "a log line is kept whole, it wraps above the live area"})
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Done, Text: long})
	d.Close()
	s := displaytest.Replay(buf.String(), width)
	lines := s.Lines()
	// The log line wraps (two screen lines); the live line does not.
	equal(t, "final", lines, []string{
		"a log line is kept whole, it w",
		"raps above the live area",
		"✔ [pack] smolvm  a very long…",
	})
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > width {
			t.Errorf("%q is %d columns wide", l, n)
		}
	}
	for _, frame := range strings.Split(buf.String(), "\n") {
		if i := strings.LastIndex(frame, "\x1b[2K"); i >= 0 {
			if n := utf8.RuneCountInString(frame[i+4:]); n > width-1 {
				t.Errorf("live line %q is %d columns, more than %d", frame[i+4:], n, width-1)
			}
		}
	}
}

func TestTTYThrottlesProgressButKeepsTheFinalState(t *testing.T) {
	d, buf := newTTY(80)
	d.Event(display.Event{Stage: display.StagePush, ID: "repo", Status: display.Working, Total: 1000})
	first := len(buf.String())
	for i := int64(1); i <= 999; i++ {
		d.Event(display.Event{Stage: display.StagePush, ID: "repo", Status: display.Working, Current: i, Total: 1000})
	}
	if n := len(buf.String()); n != first {
		t.Errorf("progress drawn without a tick: %d bytes, then %d", first, n)
	}
	d.Close()
	equal(t, "final", screen(t, buf.String(), 80), []string{"- [push] repo  [===================>] 999B/1000B"})

	// With a ticker, progress is drawn from the display's goroutine.
	var live testio.Buffer
	d = display.TTY(&live, display.TTYOptions{Width: func() int { return 80 }, Interval: time.Millisecond})
	d.Event(display.Event{Stage: display.StagePush, ID: "repo", Status: display.Working, Total: 1000})
	d.Event(display.Event{Stage: display.StagePush, ID: "repo", Status: display.Working, Current: 500, Total: 1000})
	live.WaitFor(t, "500B/1000B", 10*time.Second) // the ticker drew it
	d.Event(display.Event{Stage: display.StagePush, ID: "repo", Status: display.Done, Text: "pushed", Current: 1000})
	d.Close()
	equal(t, "ticked", screen(t, live.String(), 80), []string{"✔ [push] repo  pushed (1000B)"})
}

// In a synctest bubble, with a ticking display: the sleeps advance the
// bubble's clock, so the ticker fires as often as it would in that time,
// at once and every run alike.
func TestTTYCloseIsIdempotentAndLeavesTheCursorBelow(t *testing.T) {
	synctest.Test(t, ttyCloseIsIdempotent)
}

func ttyCloseIsIdempotent(t *testing.T) {
	d, buf := newTickingTTY(80)
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Working, Text: "packing"})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	after := buf.String()
	if err := d.Close(); err != nil || buf.String() != after {
		t.Errorf("second Close: %v, wrote %q", err, strings.TrimPrefix(buf.String(), after))
	}
	// What comes after Close (the agent, an error) starts below the final
	// frame and is never redrawn over.
	fmt.Fprint(d, "Error: interrupted\n")
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Error, Text: "killed"})
	time.Sleep(10 * time.Millisecond) // ten ticks of the bubble's clock: none may draw after Close
	synctest.Wait()
	equal(t, "after close", screen(t, buf.String(), 80), []string{
		"- [pack] smolvm  packing",
		"Error: interrupted",
		"[pack] smolvm: killed ERROR",
	})
	if rest := strings.TrimPrefix(buf.String(), after); strings.Contains(rest, "\x1b") {
		t.Errorf("escape sequences after Close: %q", rest)
	}
}

func TestTTYFreezesWhenNothingWorks(t *testing.T) { synctest.Test(t, ttyFreezesWhenNothingWorks) }

func ttyFreezesWhenNothingWorks(t *testing.T) {
	d, buf := newTickingTTY(80)
	d.Event(display.Event{Stage: display.StageBuild, ID: "t", Status: display.Working})
	d.Event(display.Event{Stage: display.StageBuild, ID: "t", Status: display.Done, Text: "built"})
	frozen := buf.String()
	// A later stage draws below, never over the finished lines, and the
	// agent may write freely after the last event: nothing is redrawn.
	d.Event(display.Event{Stage: display.StagePush, ID: "r", Status: display.Working})
	d.Event(display.Event{Stage: display.StagePush, ID: "r", Status: display.Done, Text: "pushed"})
	rest := strings.TrimPrefix(buf.String(), frozen)
	if strings.Contains(rest, "\x1b[2A") || strings.Count(rest, "\x1b[1A") != 1 {
		t.Errorf("the push redraw moved over the frozen build line: %q", rest)
	}
	before := buf.String()
	time.Sleep(20 * time.Millisecond) // twenty ticks of the bubble's clock: a frozen display draws nothing
	synctest.Wait()
	if buf.String() != before {
		t.Errorf("the ticker redrew a finished display: %q", strings.TrimPrefix(buf.String(), before))
	}
	d.Close()
	if buf.String() != before {
		t.Errorf("Close redrew a finished display: %q", strings.TrimPrefix(buf.String(), before))
	}
	equal(t, "final", screen(t, buf.String(), 80), []string{"✔ [build] t  built", "✔ [push] r  pushed"})
}

func TestTTYDropsWorkOfAFinishedStage(t *testing.T) {
	// The export names a layer by its archive path while working, by its
	// digest when done: the working line goes when the next stage starts.
	d, buf := newTTY(80)
	d.Event(display.Event{Stage: display.StageExport, ID: "layer 0a1b", Status: display.Working, Current: 5, Total: 10})
	d.Event(display.Event{Stage: display.StageExport, ID: "layer ffee", Status: display.Done, Text: "stored", Current: 10})
	d.Event(display.Event{Stage: display.StageLayer, ID: "1234", Status: display.Done, Text: "bottle layer"})
	d.Close()
	equal(t, "final", screen(t, buf.String(), 80), []string{
		"✔ [export] layer ffee  stored (10B)",
		"✔ [layer] 1234         bottle layer",
	})
}

func TestTTYSanitizesText(t *testing.T) {
	d, buf := newTTY(80)
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Log, Text: "\x1b[2J\x1b[31mred\x1b[0m\rback\tx\x1b]0;title\x07!"})
	d.Event(display.Event{Stage: display.StagePack, ID: "sm\x1b[1Aolvm", Status: display.Done, Text: "a\nb"})
	d.Close()
	equal(t, "final", screen(t, buf.String(), 80), []string{"redback x!", "✔ [pack] smolvm  ab"})
}

func TestTTYConcurrentEvents(t *testing.T) {
	var buf testio.Buffer
	d := display.TTY(&buf, display.TTYOptions{Width: func() int { return 100 }, Interval: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			id := "layer " + strconv.Itoa(g)
			for i := range 200 {
				d.Event(display.Event{Stage: display.StagePush, ID: id, Status: display.Working, Current: int64(i), Total: 200})
				if i%50 == 0 {
					fmt.Fprintf(d, "step %d.%d\n", g, i)
					d.Event(display.Event{Stage: display.StagePush, ID: id, Status: display.Log, Text: fmt.Sprintf("log %d.%d", g, i)})
				}
			}
			d.Event(display.Event{Stage: display.StagePush, ID: id, Status: display.Done, Text: "pushed"})
		})
	}
	wg.Wait()
	d.Close()
	lines := screen(t, buf.String(), 100)
	var done, logs int
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "✔ [push] layer ") && strings.HasSuffix(l, "pushed"):
			done++
		case strings.HasPrefix(l, "step ") || strings.HasPrefix(l, "log "):
			logs++
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
	if done != 8 || logs != 64 {
		t.Errorf("%d done lines, %d logs, want 8 and 64:\n%s", done, logs, strings.Join(lines, "\n"))
	}
}

// openPTY opens a pseudo-terminal pair 50 columns wide.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("a pty is needed: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 50}); err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestNewWriterPicksTheTerminalDisplay(t *testing.T) {
	_, slave := openPTY(t)
	for _, c := range []struct {
		mode  string
		term  bool
		isTTY bool
	}{
		{"auto", true, true}, {"", true, true}, {"auto", false, false},
		{"tty", false, true}, {"tty", true, true},
		{"plain", true, false}, {"json", true, false}, {"quiet", true, false},
	} {
		var out interface{ Write([]byte) (int, error) } = &bytes.Buffer{}
		if c.term {
			out = slave
		}
		if got := display.UsesTTY(c.mode, out); got != c.isTTY {
			t.Errorf("UsesTTY(%q, terminal %v) = %v", c.mode, c.term, got)
		}
	}
	// On a pty, auto draws in place and cuts lines to the pty's width.
	master, slave := openPTY(t)
	d, err := display.NewWriter("auto", slave)
	if err != nil {
		t.Fatal(err)
	}
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Working, Text: strings.Repeat("x", 100)})
	d.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Done, Text: strings.Repeat("y", 100)})
	d.Close()
	slave.Close()
	var got bytes.Buffer
	b := make([]byte, 4096)
	for {
		n, err := master.Read(b)
		got.Write(b[:n])
		if err != nil {
			break
		}
	}
	want := "✔ [pack] smolvm  " + strings.Repeat("y", 49-18) + "…"
	equal(t, "pty", screen(t, got.String(), 50), []string{want})
	if !strings.Contains(got.String(), "\x1b[1A") {
		t.Errorf("no update in place on the pty: %q", got.String())
	}
}
