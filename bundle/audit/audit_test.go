package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	if len(entries) != 2 {
		t.Errorf("%d files in the dir, want 2", len(entries))
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
				_ = l.Write(map[string]int{"i": i})
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
