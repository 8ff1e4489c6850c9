package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestWriteStampsTimeAndKeepsFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(map[string]any{"decision": "deny", "host": "x.test"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(struct {
		Time string `json:"time"`
		N    int    `json:"n"`
	}{"2026-01-01T00:00:00Z", 3}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write([]int{1}); err == nil {
		t.Fatal("a JSON array was accepted as a record")
	}
	l.Close()
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	if lines[0]["decision"] != "deny" || lines[0]["time"] == nil {
		t.Errorf("line 0 = %v", lines[0])
	}
	if lines[1]["time"] != "2026-01-01T00:00:00Z" {
		t.Errorf("an existing time was replaced: %v", lines[1])
	}
	if lines[2]["time"] == nil {
		t.Errorf("empty record not stamped: %v", lines[2])
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestRotationBoundsDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if err := l.Write(map[string]any{"i": i, "pad": strings.Repeat("x", 40)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	var total int64
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s has %d bytes, limit 1000", p, st.Size())
		}
		total += st.Size()
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if st, _ := os.Stat(filepath.Join(dir, e.Name())); st.Size() > 1000 {
			t.Errorf("%s has %d bytes, limit 1000", e.Name(), st.Size())
		}
	}
	if want := []string{"audit.jsonl", "audit.jsonl.1", "audit.jsonl.keep", "audit.jsonl.keep.1", "audit.jsonl.start"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	last := readLines(t, path)
	if got := last[len(last)-1]["i"]; got != float64(499) {
		t.Errorf("last line i=%v, want 499", got)
	}
}

func TestTeeAndConcurrency(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "a.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var seen int
	l.Tee(func(line []byte) {
		if !json.Valid(line) {
			t.Errorf("tee got invalid JSON %q", line)
		}
		mu.Lock()
		seen++
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_ = l.Write(map[string]int{"g": g, "i": i})
			}
		}()
	}
	wg.Wait()
	if seen != 800 {
		t.Fatalf("tee saw %d lines, want 800", seen)
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	var l *Logger
	if err := l.Write(map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	l.Tee(func([]byte) {})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// allLines reads the lines of the files given, in order, skipping missing
// files.
func allLines(t *testing.T, paths ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, readLines(t, p)...)
		}
	}
	return out
}

// TestAFloodOfRefusalsCannotRotateTheRecordAway: what the agent did first,
// and what was let through, outlive any number of refusals; the record
// says how many lines rotation removed.
func TestAFloodOfRefusalsCannotRotateTheRecordAway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit-proxy.jsonl")
	l, err := Open(path, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(map[string]any{"daemon": "proxy", "host": "exfil.example", "decision": "allow", "status": 200}); err != nil {
		t.Fatal(err)
	}
	l.Write(map[string]any{"daemon": "gate", "event": "push", "decision": "allow", "refs": []string{"refs/heads/bottle/x/work"}})
	// Refusals that differ (every host its own), so none is counted as a
	// repeat: only rotation bounds them.
	const flood = 20000
	for i := range flood {
		if err := l.Write(map[string]any{"daemon": "proxy", "host": fmt.Sprintf("h%d.example", i), "decision": "deny",
			"reason": "missing or wrong proxy token", "status": 407}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	has := func(lines []map[string]any, host string) bool {
		for _, m := range lines {
			if m["host"] == host {
				return true
			}
		}
		return false
	}
	main := allLines(t, path+".1", path)
	if has(main, "exfil.example") {
		t.Fatal("the flood did not rotate the first lines out of the main files; the test proves nothing")
	}
	start := readLines(t, path+".start")
	if start[0]["event"] != EventStart || !has(start, "exfil.example") {
		t.Errorf("the run's start is not kept: %v", start[:min(3, len(start))])
	}
	keep := allLines(t, path+".keep.1", path+".keep")
	if !has(keep, "exfil.example") {
		t.Errorf("the allowed request is not kept")
	}
	pushes := 0
	for _, m := range keep {
		if m["event"] == "push" {
			pushes++
		}
		if m["decision"] == "deny" {
			t.Errorf("a refusal in the kept lines: %v", m)
		}
	}
	if pushes != 1 {
		t.Errorf("%d push lines kept, want 1", pushes)
	}
	// Every line of the main file is either still there or counted as
	// dropped; the notes that count are lines too, and all are kept.
	notes, total := 0, 0.0
	for _, m := range keep {
		if m["event"] == EventDropped && m["file"] == filepath.Base(path) {
			notes++
			total = m["dropped_this_run"].(float64)
		}
	}
	if notes == 0 {
		t.Fatal("no line says that lines were dropped")
	}
	if last := main[len(main)-1]; len(main)+int(total) != flood+2+notes {
		t.Errorf("%d lines present and %v reported dropped, but %d were written (last %v)", len(main), total, flood+2+notes, last)
	}
	for _, p := range []string{path, path + ".1", path + ".keep", path + ".keep.1", path + ".start"} {
		if st, err := os.Stat(p); err == nil && st.Size() > 64<<10 {
			t.Errorf("%s has %d bytes, over its bound", p, st.Size())
		}
	}
}

// TestRepeatedRefusalsAreCounted: the same refusal again and again (from
// new connections, at new times) is written once, then once with how many
// more came.
func TestRepeatedRefusalsAreCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var teed []string
	l.Tee(func(line []byte) { teed = append(teed, string(line)) })
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	refuse := func(port int) {
		if err := l.Write(map[string]any{"daemon": "proxy", "client": fmt.Sprintf("10.0.0.3:%d", port), "method": "GET",
			"host": "x", "decision": "deny", "reason": "missing or wrong proxy token", "status": 407, "duration_ms": 0.01 * float64(port)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		clock = clock.Add(time.Millisecond / 2)
		refuse(40000 + i)
	}
	// Another refusal is its own line.
	l.Write(map[string]any{"daemon": "gate", "event": "auth", "remote": "10.0.0.3:1", "decision": "deny", "reason": "wrong token"})
	// After the window, the same refusal is written again.
	clock = clock.Add(2 * time.Second)
	refuse(50000)
	l.Close()
	lines := readLines(t, path)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want the first refusal, the other one, the count and the refusal after the window:\n%v", len(lines), lines)
	}
	if lines[0]["client"] != "10.0.0.3:40000" || lines[0]["repeated"] != nil {
		t.Errorf("first line %v", lines[0])
	}
	if lines[1]["event"] != "auth" {
		t.Errorf("second line %v", lines[1])
	}
	if lines[2]["repeated"] != float64(999) || lines[2]["repeated_since"] == nil || lines[2]["reason"] != "missing or wrong proxy token" {
		t.Errorf("count line %v", lines[2])
	}
	if lines[3]["client"] != "10.0.0.3:50000" || lines[3]["repeated"] != nil {
		t.Errorf("after the window %v", lines[3])
	}
	if len(teed) != 4 {
		t.Errorf("the tee saw %d lines, want the 4 written", len(teed))
	}
}

// TestEachRunsStartIsKept: every Open (a daemon's run) adds its start to
// FILE.start.
func TestEachRunsStartIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for run := 1; run <= 3; run++ {
		l, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.Write(map[string]any{"daemon": "gate", "event": "fetch", "decision": "allow", "run": run})
		l.Close()
	}
	var runs []float64
	for _, m := range readLines(t, path+".start") {
		if m["event"] == EventStart {
			runs = append(runs, m["run"].(float64))
		}
	}
	if !slices.Equal(runs, []float64{1, 2, 3}) {
		t.Errorf("runs in the start file: %v", runs)
	}
}
