package plan

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/spec"
)

// newPlan is a plan computed as Prepare does, with no stage dir on disk.
func newPlan(t *testing.T, backend, mode string) Plan {
	t.Helper()
	s, err := spec.Parse("bottle.yaml", []byte("agent:\n  env:\n    LANG: C.UTF-8\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{
		Spec:      s.Resolve(spec.Defaults{Command: []string{"claude"}}),
		Slug:      "my-repo",
		Workspace: "/src/My Repo",
		Provider:  Provider{Name: "claude", PromptMode: "append-system-prompt-file", Dockerfile: "builtin:claude"},
		Choice:    Choice{Backend: backend, NetworkMode: mode, Why: "test"},
		Created:   time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC),
		Subnet:    netip.MustParsePrefix("10.9.0.0/24"),
		Files:     Files{Dir: "/stage", Prompt: "/stage/p", AgentToken: "/stage/a", OperatorToken: "/stage/o", GateRepo: "/stage/g"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRecordsTheStageFiles(t *testing.T) {
	p := newPlan(t, "docker", NetworkInternal)
	if p.StageDir != "/stage" || p.PromptFile != "/stage/p" || p.AgentTokenFile != "/stage/a" ||
		p.OperatorTokenFile != "/stage/o" || p.GitGate.Repo != "/stage/g" {
		t.Errorf("stage files %+v", p)
	}
	if p.Bundle.Reserved.String() != "10.9.0.0/24" || p.Docker == nil || p.Endpoints == nil {
		t.Errorf("plan %+v", p)
	}
}

// TestPlanIsAValue keeps package plan free of file writes: the stage dir
// and the subnet reservations are package stage's, so that a plan can be
// computed, compared and sent anywhere without touching the host.
func TestPlanIsAValue(t *testing.T) {
	refused := map[string]bool{
		"WriteFile": true, "MkdirAll": true, "Mkdir": true, "Create": true, "CreateTemp": true,
		"OpenFile": true, "Remove": true, "RemoveAll": true, "Rename": true, "Chmod": true,
		"Symlink": true, "Link": true, "Truncate": true, "MkdirTemp": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		osName := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path != "os" {
				continue
			}
			osName = "os"
			if imp.Name != nil {
				osName = imp.Name.Name
			}
		}
		if osName == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == osName && refused[sel.Sel.Name] {
				t.Errorf("%s: os.%s: package plan computes values; write files in package stage",
					fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source file of package plan was checked")
	}
}

// TestStageOnEngineOnlyWhereTheAgentIs: the stage goes to the engine for
// an agent that runs there (docker), never for one that runs on this
// machine (smolvm), and the plan it was made from is left as it was.
func TestStageOnEngineOnlyWhereTheAgentIs(t *testing.T) {
	d := newPlan(t, "docker", NetworkInternal)
	if q := d.WithStageOnEngine(true); !q.Bundle.StageOnEngine || d.Bundle.StageOnEngine {
		t.Errorf("docker: %v, and the original %v", q.Bundle.StageOnEngine, d.Bundle.StageOnEngine)
	}
	if q := d.WithStageOnEngine(false); q.Bundle.StageOnEngine {
		t.Error("docker, off: on")
	}
	if q := newPlan(t, "smolvm", spec.NetworkBridge).WithStageOnEngine(true); q.Bundle.StageOnEngine {
		t.Error("smolvm: the stage went to the engine")
	}
}
