package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The line that counts repeated refusals is written late (at the window's
// end, or at Close): when that write fails, Close says so instead of
// losing the line silently.
func TestCloseReportsLostRepeatLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	refusal := map[string]any{"daemon": "proxy", "client": "10.0.0.3:4000", "method": "GET", "host": "x",
		"decision": "deny", "reason": "missing or wrong proxy token", "status": 407}
	for range 2 {
		if err := l.Write(refusal); err != nil {
			t.Fatal(err)
		}
	}
	// The log's file stops taking writes (as on a full or failing disk);
	// closing it still works.
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.main.f.Close()
	l.main.f = ro
	l.mu.Unlock()
	err = l.Close()
	if err == nil || !strings.Contains(err.Error(), "repeated refusals") {
		t.Fatalf("Close = %v, want the failed write of the repeat line", err)
	}
}
