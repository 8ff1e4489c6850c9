package display_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/display"
)

func TestModes(t *testing.T) {
	e := display.Event{Stage: display.StagePush, ID: "127.0.0.1:5000/bottle/agent", Status: display.Working, Current: 512 << 20, Total: 1 << 30}
	for mode, want := range map[string]string{
		"auto":  "[push] 127.0.0.1:5000/bottle/agent: (512.0MiB/1.0GiB)\n",
		"plain": "[push] 127.0.0.1:5000/bottle/agent: (512.0MiB/1.0GiB)\n",
		"quiet": "",
	} {
		var buf bytes.Buffer
		w, err := display.NewWriter(mode, &buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Event(e)
		w.Close()
		if buf.String() != want {
			t.Errorf("%s: %q, want %q", mode, buf.String(), want)
		}
	}
	var buf bytes.Buffer
	w, _ := display.NewWriter("json", &buf)
	w.Event(e)
	var back display.Event
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back != e {
		t.Errorf("json: %s -> %+v, %v", buf.String(), back, err)
	}
	if _, err := display.NewWriter("fancy", io.Discard); err == nil || !strings.Contains(err.Error(), "auto, tty, plain, quiet or json") {
		t.Errorf("unknown mode: %v", err)
	}
}

func TestLines(t *testing.T) {
	var got []display.Event
	l := display.Lines(display.WriterFunc(func(e display.Event) { got = append(got, e) }), display.StagePack, "smolvm")
	io.WriteString(l, "Pulling image x... ")
	io.WriteString(l, "done.\r\n\n  \nPacked: out")
	if len(got) != 1 || got[0].Text != "Pulling image x... done." || got[0].Stage != display.StagePack || got[0].Status != display.Log {
		t.Fatalf("before close: %+v", got)
	}
	l.Close()
	if len(got) != 2 || got[1].Text != "Packed: out" {
		t.Errorf("after close: %+v", got)
	}
}

// `--progress json` prints only JSON: the bottle's step lines, written as
// text, come out as events too, one object a line.
func TestJSONStepLinesAreEvents(t *testing.T) {
	var buf bytes.Buffer
	w, err := display.NewWriter("json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Event(display.Event{Stage: display.StagePush, ID: "sha256:ab", Status: display.Done})
	fmt.Fprintf(w, "bundle of b1 is up\nagent ")
	fmt.Fprintf(w, "started\n")
	fmt.Fprintf(w, "no newline at the end")
	w.Close()
	var texts []string
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var e display.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %q (%v)\nwhole output:\n%s", line, err, buf.String())
		}
		if e.Stage == display.StageBottle {
			texts = append(texts, e.Text)
		}
	}
	want := []string{"bundle of b1 is up", "agent started", "no newline at the end"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("step events %q, want %q", texts, want)
	}
}
