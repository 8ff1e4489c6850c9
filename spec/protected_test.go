package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/docker-bottle/docker-bottle/bundle/protect"
)

func resolved(t *testing.T, src string, files ...string) Spec {
	t.Helper()
	s, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s.Resolve(Defaults{ProtectFiles: files})
}

// The defaults are protect's list (the one the gate applies too) and cover
// what the host or CI runs after a merge.
func TestProtectedPathsDefaults(t *testing.T) {
	r := resolved(t, "name: a\n", "docker/Dockerfile")
	got := r.Git.ProtectedPaths.Effective
	if want := append(protect.Defaults(), "docker/Dockerfile"); !slices.Equal(got, want) {
		t.Fatalf("effective %v, want %v", got, want)
	}
	for _, p := range []string{"**/bottle.yaml", ".github/**", ".gitlab-ci.yml", ".gitlab/**", ".circleci/**",
		"Jenkinsfile", "azure-pipelines.yml", ".buildkite/**", "bitbucket-pipelines.yml", ".husky/**", ".githooks/**",
		"lefthook.*", ".pre-commit-config.yaml", "lint-staged.config.*", ".lintstagedrc.*", ".gitmodules",
		".gitattributes", ".lfsconfig", ".envrc", ".vscode/tasks.json", ".vscode/settings.json", ".devcontainer/**",
		".claude/settings*.json", ".claude/hooks/**", ".mcp.json"} {
		if !slices.Contains(got, p) {
			t.Errorf("the defaults lack %s", p)
		}
	}
	for _, p := range got {
		if err := protect.Check(p); err != nil {
			t.Errorf("default %v", err)
		}
	}
}

func TestProtectedPathsAddAndRemove(t *testing.T) {
	defaults := protect.Defaults()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"absent", "name: a\n", defaults},
		{"empty list keeps the defaults", "git:\n  protected_paths: []\n", defaults},
		{"a list adds", "git:\n  protected_paths: [secrets/**, .github/**]\n", append(slices.Clone(defaults), "secrets/**")},
		{"mapping", "git:\n  protected_paths:\n    add: [deploy/**]\n    remove: [.envrc, .vscode/settings.json]\n",
			append(slices.DeleteFunc(slices.Clone(defaults), func(s string) bool {
				return s == ".envrc" || s == ".vscode/settings.json"
			}), "deploy/**")},
		{"remove then add back", "git:\n  protected_paths:\n    add: [.envrc]\n    remove: [.envrc]\n",
			append(slices.DeleteFunc(slices.Clone(defaults), func(s string) bool { return s == ".envrc" }), ".envrc")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := resolved(t, c.yaml)
			if got := r.Git.ProtectedPaths.Effective; !slices.Equal(got, c.want) {
				t.Fatalf("effective %v\nwant %v", got, c.want)
			}
			// What config prints reads back as the same list, in YAML and
			// in JSON (plans).
			out, err := yaml.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if again := resolved(t, string(out)); !slices.Equal(again.Git.ProtectedPaths.Effective, c.want) {
				t.Errorf("read back from\n%s\ngives %v", out, again.Git.ProtectedPaths.Effective)
			}
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back Spec
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back.Git.ProtectedPaths.List(), c.want) {
				t.Errorf("JSON %s reads back as %v", js, back.Git.ProtectedPaths.List())
			}
		})
	}
	// An unresolved spec still protects at least the defaults.
	var s Spec
	if !slices.Equal(s.Git.ProtectedPaths.List(), defaults) {
		t.Errorf("List of an unresolved spec: %v", s.Git.ProtectedPaths.List())
	}
}

func TestProtectedPathsErrorsAreLocated(t *testing.T) {
	cases := []struct{ name, yaml, where, text string }{
		{"absolute", "git:\n  protected_paths: [/etc/x]\n", "f.yaml:2:21", "relative to the repository root"},
		{"dotdot", "git:\n  protected_paths:\n    - a/../b\n", "f.yaml:3:7", ".. component"},
		{"trailing slash", "git:\n  protected_paths:\n    add: [.husky/]\n", "f.yaml:3:11", "write .husky/**"},
		{"unknown remove", "git:\n  protected_paths:\n    remove:\n      - .github/workflows/**\n", "f.yaml:4:9",
			"not a default protected path"},
		{"unknown key", "git:\n  protected_paths:\n    drop: [.envrc]\n", "f.yaml:3:5", `unknown field "drop"`},
		{"scalar", "git:\n  protected_paths: .envrc\n", "f.yaml:2:20", "a list of paths"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, c.where+": ") || !strings.Contains(msg, c.text) {
				t.Errorf("error %q, want %s: ...%s...", msg, c.where, c.text)
			}
		})
	}
}

func TestRepoFiles(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("ci/bottle.yaml")
	mk("docker/agent.Dockerfile")
	mk("conf/real[1].yaml")
	if err := os.Symlink("../conf/real[1].yaml", filepath.Join(root, "ci", "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	s := Spec{Agent: Agent{Dockerfile: "../docker/agent.Dockerfile", Context: ".."}, Egress: Egress{ExtraCA: "corp.pem"}}
	got := RepoFiles(root, filepath.Join(root, "ci"), filepath.Join(root, "ci", "bottle.yaml"), s)
	want := []string{"ci/bottle.yaml", "ci/corp.pem", "docker/agent.Dockerfile", "docker/agent.Dockerfile.dockerignore", ".dockerignore"}
	if !slices.Equal(got, want) {
		t.Errorf("RepoFiles = %v, want %v", got, want)
	}

	// A spec reached through a symlink is protected under both names, as
	// globs that match just those names; an image needs no Dockerfile; a
	// spec outside the repository is nobody's to push.
	s = Spec{Agent: Agent{Dockerfile: "Dockerfile", Image: "alpine"}}
	got = RepoFiles(root, root, filepath.Join(root, "ci", "linked.yaml"), s)
	if want := []string{"ci/linked.yaml", `conf/real\[1].yaml`}; !slices.Equal(got, want) {
		t.Errorf("RepoFiles through a symlink = %v, want %v", got, want)
	}
	if got := RepoFiles(root, root, filepath.Join(t.TempDir(), "bottle.yaml"), Spec{}); len(got) != 0 {
		t.Errorf("a spec outside the repository gives %v", got)
	}
}
