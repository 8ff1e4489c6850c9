package repo

import (
	"strings"
	"testing"
)

// A batch whose refs nest (a and a/b) is refused before anything is
// written: no half-applied state.
func TestUpdateRefsRefusesNestedBatch(t *testing.T) {
	_, bare := history(t)
	r, err := Open(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head, _, _ := r.Resolve("refs/heads/main")
	for _, names := range [][]string{
		{"refs/heads/x/a/b", "refs/heads/x/a"},
		{"refs/heads/x/a", "refs/heads/x/a/b"},
		{"refs/heads/x/a", "refs/heads/x/a"},
	} {
		var ups []RefUpdate
		for _, n := range names {
			ups = append(ups, RefUpdate{Name: n, New: head})
		}
		err := r.UpdateRefs(ups)
		if err == nil || !(strings.Contains(err.Error(), "conflict") || strings.Contains(err.Error(), "twice")) {
			t.Errorf("UpdateRefs(%v) = %v, want a conflict", names, err)
		}
		for _, n := range names {
			if h, ok, _ := r.Resolve(n); ok {
				t.Errorf("UpdateRefs(%v) created %s = %s", names, n, h)
			}
		}
	}
	if err := RefConflict([]string{"refs/heads/x/a-1", "refs/heads/x/a/b", "refs/heads/x/ab"}); err != nil {
		t.Errorf("names that do not nest: %v", err)
	}
}
