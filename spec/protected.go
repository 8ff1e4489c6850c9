package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/docker-bottle/docker-bottle/bundle/protect"
)

// ProtectedPaths is git.protected_paths: the paths a push may not change
// without a human's approval. bottle.yaml gives either a list, whose
// entries are added to the defaults (a list never drops a default), or a
// mapping {add: [...], remove: [...]}, whose remove entries take defaults
// away by name. Resolve fills Effective: the defaults (package protect,
// plus the files this run reads from the repository), minus Remove, plus
// Add.
type ProtectedPaths struct {
	Add       []string
	Remove    []string
	Effective []string
	// mapping records that the file used the {add, remove} form, so that
	// problems are located under the right key.
	mapping bool
}

type protectedPathsMap struct {
	Add    []string `yaml:"add,omitempty" json:"add,omitempty"`
	Remove []string `yaml:"remove,omitempty" json:"remove,omitempty"`
}

// UnmarshalYAML reads either form.
func (p *ProtectedPaths) UnmarshalYAML(n ast.Node) error {
	switch n.Type() {
	case ast.SequenceType:
		var list []string
		if err := yaml.NodeToValue(n, &list, yaml.Strict()); err != nil {
			return err
		}
		*p = ProtectedPaths{Add: list}
		return nil
	case ast.MappingType:
		var m protectedPathsMap
		if err := yaml.NodeToValue(n, &m, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
			return err
		}
		*p = ProtectedPaths{Add: m.Add, Remove: m.Remove, mapping: true}
		return nil
	case ast.NullType:
		*p = ProtectedPaths{}
		return nil
	}
	return located(n, "protected_paths is a list of paths to add to the defaults, "+
		"or a mapping with add: and remove: lists")
}

// MarshalYAML writes a resolved value so that reading it back gives the
// same effective list: the list itself when nothing was removed, else
// add: the effective list and remove: what was removed. An unresolved
// value is written as given.
func (p ProtectedPaths) MarshalYAML() (any, error) {
	add := p.Add
	if p.Effective != nil {
		add = p.Effective
	}
	if len(p.Remove) == 0 && !(p.Effective == nil && p.mapping) {
		if add == nil {
			add = []string{}
		}
		return add, nil
	}
	return protectedPathsMap{Add: add, Remove: p.Remove}, nil
}

// IsZero reports whether nothing was given (omitempty).
func (p ProtectedPaths) IsZero() bool {
	return p.Add == nil && p.Remove == nil && p.Effective == nil && !p.mapping
}

type protectedPathsJSON struct {
	Add       []string `json:"add,omitempty"`
	Remove    []string `json:"remove,omitempty"`
	Effective []string `json:"effective,omitempty"`
}

// MarshalJSON writes every part: plans and `config --format json` show the
// effective list next to what the file said.
func (p ProtectedPaths) MarshalJSON() ([]byte, error) {
	return json.Marshal(protectedPathsJSON{p.Add, p.Remove, p.Effective})
}

// UnmarshalJSON reads what MarshalJSON writes, and the plain list of plans
// made before the list could be added to (which was the effective list).
func (p *ProtectedPaths) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*p = ProtectedPaths{Effective: list}
		return nil
	}
	var v protectedPathsJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("protected_paths must be a list or an object with add, remove and effective: %w", err)
	}
	*p = ProtectedPaths{Add: v.Add, Remove: v.Remove, Effective: v.Effective, mapping: v.Remove != nil}
	return nil
}

// List is the effective list: Effective once resolved, else the defaults
// with the spec's additions and removals (never less than asked for).
func (p ProtectedPaths) List() []string {
	if p.Effective != nil {
		return slices.Clone(p.Effective)
	}
	return p.resolve(nil).Effective
}

func (p ProtectedPaths) clone() ProtectedPaths {
	return ProtectedPaths{Add: slices.Clone(p.Add), Remove: slices.Clone(p.Remove),
		Effective: slices.Clone(p.Effective), mapping: p.mapping}
}

// resolve computes the effective list from the defaults and files.
func (p ProtectedPaths) resolve(files []string) ProtectedPaths {
	r := p.clone()
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, d := range protect.Defaults() {
		if !slices.Contains(p.Remove, d) {
			add(d)
		}
	}
	for _, f := range files {
		add(f)
	}
	for _, a := range p.Add {
		add(a)
	}
	r.Effective = out
	return r
}

func (p ProtectedPaths) validate(add func(path, format string, args ...any)) {
	key := "$.git.protected_paths"
	addKey, removeKey := key, key+".remove"
	if p.mapping {
		addKey = key + ".add"
	}
	for i, pp := range p.Add {
		if err := protect.Check(pp); err != nil {
			add(fmt.Sprintf("%s[%d]", addKey, i), "%v", err)
		}
	}
	for i, pp := range p.Remove {
		if !protect.IsDefault(pp) {
			add(fmt.Sprintf("%s[%d]", removeKey, i), "%q is not a default protected path: remove takes entries "+
				"of the default list as written there (docker bottle config shows the effective list)", pp)
		}
	}
}

// RepoFiles lists, as globs relative to the repository at root, the files
// of the repository that this run reads and the host acts on: the spec
// file in use (specPath, relative to the working directory, "" for none),
// the CA the proxy trusts (egress.extra_ca) and, when the agent is built
// from agent.dockerfile, that Dockerfile and the .dockerignore files of its
// build. Relative paths in the spec are resolved against base (the spec
// file's folder, or the workspace without one), as run does. A file
// reached through a symlink is listed under both names; files outside the
// repository are left out (no push can change them).
func RepoFiles(root, base, specPath string, s Spec) []string {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(base, p)
	}
	var files []string
	if specPath != "" {
		if p, err := filepath.Abs(specPath); err == nil {
			files = append(files, p)
		}
	}
	if s.Egress.ExtraCA != "" {
		files = append(files, abs(s.Egress.ExtraCA))
	}
	if df := s.Agent.Dockerfile; df != "" && s.Agent.Image == "" {
		ctx := s.Agent.Context
		if ctx == "" {
			ctx = "."
		}
		dockerfile := abs(df)
		files = append(files, dockerfile, dockerfile+".dockerignore", filepath.Join(abs(ctx), ".dockerignore"))
	}
	roots := []string{root}
	if r, err := filepath.EvalSymlinks(root); err == nil && r != root {
		roots = append(roots, r)
	}
	var out []string
	seen := map[string]bool{}
	addRel := func(p string) {
		for _, r := range roots {
			rel, err := filepath.Rel(r, p)
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				continue
			}
			g := protect.Literal(filepath.ToSlash(rel))
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
			return
		}
	}
	for _, f := range files {
		addRel(f)
		if real, err := filepath.EvalSymlinks(f); err == nil {
			addRel(real)
		} else if _, serr := os.Lstat(f); serr == nil {
			// A dangling symlink: the agent could create its target.
			if t, err := os.Readlink(f); err == nil {
				if !filepath.IsAbs(t) {
					t = filepath.Join(filepath.Dir(f), t)
				}
				addRel(filepath.Clean(t))
			}
		}
	}
	return out
}
