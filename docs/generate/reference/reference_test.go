package reference_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-bottle/docker-bottle/docs/generate/reference"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestReferenceIsCurrent generates the reference docs afresh from the
// committed ones and fails when anything differs: a command or flag
// changed without `make docs`.
func TestReferenceIsCurrent(t *testing.T) {
	committed := filepath.Join(testenv.ModuleRoot(), "docs", "reference")
	dir := t.TempDir()
	ents, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := reference.Generate(dir); err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(ents) {
		t.Errorf("docs/reference has %d files, the commands make %d: run `make docs`", len(ents), len(gen))
	}
	for _, e := range gen {
		want, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("docs/reference/%s is not current: run `make docs` and commit the result", e.Name())
		}
	}
}
