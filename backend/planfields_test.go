package backend_test

import (
	"encoding/json"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/docker-bottle/docker-bottle"

// TestOnlyBackendsReadTheBackendPartsOfAPlan keeps every switch on the kind
// of backend behind the Backend interface: outside backend/... and plan (which
// makes the plan), no code reads plan.Plan's Docker or Smolvm field. Tests
// may (they check what a backend made).
func TestOnlyBackendsReadTheBackendPartsOfAPlan(t *testing.T) {
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,GoFiles,Export", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
	}
	exports := map[string]string{}
	var ours []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok || rel == "plan" || rel == "backend" || strings.HasPrefix(rel, "backend/") {
			continue
		}
		ours = append(ours, p)
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(exports[path])
	})
	for _, p := range ours {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		if _, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-checking %s: %v", p.ImportPath, err)
		}
		for sel, s := range info.Selections {
			f := s.Obj()
			if s.Kind() != types.FieldVal || f.Pkg() == nil || f.Pkg().Path() != module+"/plan" {
				continue
			}
			recv := s.Recv()
			if ptr, ok := recv.(*types.Pointer); ok {
				recv = ptr.Elem()
			}
			if named, ok := recv.(*types.Named); !ok || named.Obj().Name() != "Plan" {
				continue
			}
			if f.Name() == "Docker" || f.Name() == "Smolvm" {
				t.Errorf("%s reads plan.Plan's %s: ask the bottle's backend (backend.For) instead", fset.Position(sel.Pos()), f.Name())
			}
		}
	}
	t.Logf("%d packages checked", len(ours))
}
