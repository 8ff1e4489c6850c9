package testenv

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

func TestEngineHelpersFailOutsideTheE2EBuild(t *testing.T) {
	msg := testio.Failure(t, func(tb testing.TB) { needsE2E(tb, "testenv.Engine") })
	if E2E && msg != "" {
		t.Errorf("needsE2E failed in the e2e build: %q", msg)
	}
	if !E2E && !strings.Contains(msg, "//go:build e2e") {
		t.Errorf("needsE2E let a unit test reach the engine (message %q)", msg)
	}
}

// TestE2EFilesAreTagged keeps the names and the tag together: a file named
// *_e2e_test.go is built only with -tags e2e, and no other file is.
func TestE2EFilesAreTagged(t *testing.T) {
	root := ModuleRoot()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Scan()
		tagged := strings.TrimSpace(sc.Text()) == "//go:build e2e"
		named := strings.HasSuffix(path, "_e2e_test.go")
		rel, _ := filepath.Rel(root, path)
		switch {
		case named && !tagged:
			t.Errorf("%s: an e2e test file must begin with `//go:build e2e`", rel)
		case tagged && !named:
			t.Errorf("%s: a file built only for e2e must be named *_e2e_test.go", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
