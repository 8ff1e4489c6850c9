package plugin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestCommandsAreWellFormed walks every command, as buildx's root test
// does: one-line help, a Use line starting with the name, an Args check, a
// RunE, and usage text for every flag.
func TestCommandsAreWellFormed(t *testing.T) {
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	root := NewRootCmd(cli)
	if len(root.Commands()) == 0 {
		t.Fatal("no subcommands")
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			name := sub.CommandPath()
			if sub.Short == "" || strings.Contains(sub.Short, "\n") || strings.HasSuffix(sub.Short, ".") {
				t.Errorf("%s: Short must be one line without a final period: %q", name, sub.Short)
			}
			if !strings.HasPrefix(sub.Use, sub.Name()) {
				t.Errorf("%s: Use %q does not start with the name", name, sub.Use)
			}
			if sub.HasSubCommands() {
				walk(sub)
				continue
			}
			if sub.RunE == nil {
				t.Errorf("%s: no RunE", name)
			}
			if sub.Args == nil {
				t.Errorf("%s: no Args validation", name)
			}
			sub.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Usage == "" {
					t.Errorf("%s --%s: no usage text", name, f.Name)
				}
			})
		}
	}
	walk(root)
}

// TestOneFilePerCommand: each command NAME is built by nameCmd in
// NAME.go, and its RunE ends by calling runXxx(cmd.Context(), dockerCli,
// opts), where the logic lives, as buildx's commands do.
func TestOneFilePerCommand(t *testing.T) {
	fset := token.NewFileSet()
	pkgFiles, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	ctors := map[string]*ast.FuncDecl{} // constructor name -> declaration
	files := map[string]string{}        // constructor name -> file
	for _, f := range pkgFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasSuffix(fd.Name.Name, "Cmd") {
				ctors[fd.Name.Name], files[fd.Name.Name] = fd, f
			}
		}
	}
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range NewRootCmd(cli).Commands() {
		name := sub.Name()
		ctor := name + "Cmd"
		if files[ctor] != name+".go" || !runEndsWithRun(ctors[ctor]) {
			t.Errorf("%s: want %s in %s.go (found in %q) with a RunE that ends in `return runXxx(cmd.Context(), dockerCli, opts)`",
				name, ctor, name, files[ctor])
		}
	}
}

// runEndsWithRun reports whether the RunE of the command that ctor builds
// ends with `return runXxx(cmd.Context(), dockerCli[, opts])`.
func runEndsWithRun(ctor *ast.FuncDecl) bool {
	if ctor == nil {
		return false
	}
	found := false
	ast.Inspect(ctor, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		if key, ok := kv.Key.(*ast.Ident); !ok || key.Name != "RunE" {
			return true
		}
		lit, ok := kv.Value.(*ast.FuncLit)
		if !ok || len(lit.Body.List) == 0 {
			return false
		}
		ret, ok := lit.Body.List[len(lit.Body.List)-1].(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			return false
		}
		call, ok := ret.Results[0].(*ast.CallExpr)
		if !ok || len(call.Args) < 2 || len(call.Args) > 3 {
			return false
		}
		if len(call.Args) == 3 {
			if _, ok := call.Args[2].(*ast.Ident); !ok { // the options struct
				return false
			}
		}
		fn, ok := call.Fun.(*ast.Ident)
		ctx := types.ExprString(call.Args[0])
		found = ok && strings.HasPrefix(fn.Name, "run") && ctx == "cmd.Context()" && types.ExprString(call.Args[1]) == "dockerCli"
		return false
	})
	return found
}

// TestCommandsLeaveImagesToTheService: the commands reach the image
// pipeline only through bottles.Service (review §1.3), so no command file
// imports image/*.
func TestCommandsLeaveImagesToTheService(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const imagePkgs = "github.com/docker-bottle/docker-bottle/image"
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if path == imagePkgs || strings.HasPrefix(path, imagePkgs+"/") {
				t.Errorf("%s imports %s: ask bottles.Service instead", f, path)
			}
		}
	}
}
