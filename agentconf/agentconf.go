// Package agentconf collects the user's own agent configuration (Claude
// Code's CLAUDE.md, settings, commands, agents, skills and MCP servers;
// Codex's config.toml and AGENTS.md) as a snapshot the bottle copies into
// the agent's home at its first start, without the user's credentials.
//
// A snapshot is read once, on the host, before the bottle starts: it is a
// copy (nothing in the bottle writes back), bounded in files and bytes,
// never follows a symlink out of the agent's configuration folder, and is
// refused whole when a carried file holds something that looks like a
// credential.
package agentconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker-bottle/docker-bottle/spec"
)

// Bounds of a snapshot, unless Options say otherwise.
const (
	DefaultMaxFiles = 1000
	DefaultMaxBytes = 16 << 20
	// maxSourceBytes bounds the files that are filtered rather than copied
	// (~/.claude.json keeps every project's history and can be large).
	maxSourceBytes = 64 << 20
)

// Options say whose configuration to collect, and what the bottle sets
// itself.
type Options struct {
	// Home is the user's home directory on the host.
	Home string
	// ConfigDir is where the agent keeps its configuration when the user
	// moved it (CLAUDE_CONFIG_DIR, which then holds .claude.json too;
	// CODEX_HOME); empty: ~/.claude or ~/.codex. It still lands in
	// ~/.claude or ~/.codex in the bottle.
	ConfigDir string
	// Provider is the agent (spec.ProviderClaude, spec.ProviderCodex);
	// other providers carry nothing.
	Provider string
	// Setting is agent.user_config (resolved: its Mode is not empty).
	Setting spec.UserConfig
	// BottleSettings are the Claude Code settings the bottle writes (its
	// managed settings, provider.ClaudeSettings): the user's settings are
	// carried under them, and never a key they set that Claude Code does
	// not merge across scopes.
	BottleSettings []byte
	// ReservedEnv are the variables the bottle gives the agent (its guest
	// environment and agent.env): the user's settings do not change them.
	ReservedEnv []string
	// Secrets are the values of the bottle's configured secrets: a carried
	// file that holds one stops the snapshot.
	Secrets []Secret
	// CommandExists reports whether a command (an MCP server's) is in the
	// agent image; nil carries every local MCP server, unchecked.
	CommandExists func(name string) bool
	// MaxFiles and MaxBytes bound the snapshot (0: the defaults).
	MaxFiles int
	MaxBytes int64
}

// File is one file of a snapshot.
type File struct {
	// Path is where it goes, relative to the agent's home, with slashes.
	Path string
	// Source is where it was read, as the user writes it (~/.claude/...).
	Source  string
	Mode    fs.FileMode
	Size    int
	Content []byte `json:"-"`
	// src is the file as read, when Content is what was kept of it.
	src []byte
}

// LeftOut is something of the user's configuration the snapshot does not
// carry, and why. Key, when set, is a part of the file at Path.
type LeftOut struct {
	Path   string
	Key    string `json:",omitempty"`
	Reason string
}

// Snapshot is the user's agent configuration as the bottle carries it.
type Snapshot struct {
	Files      []File
	LeftOut    []LeftOut   `json:",omitempty"`
	MCPServers []MCPServer `json:",omitempty"`
}

// layout is where an agent keeps its configuration in a home.
type layout struct {
	agent string
	// trees are folders of the home the agent's configuration is in; files
	// are single files of the home.
	trees, files []string
	// auto is what agent.user_config: auto carries.
	auto []string
	// never are paths (globs) never carried, with why.
	never map[string]string
	// filters turn a file into what is carried of it.
	filters map[string]filter
}

// filter turns a file's content into what is carried (nil: nothing), with
// what was left out of it and the MCP servers it configures.
type filter func(o *Options, src []byte, source string, bottle map[string]any) ([]byte, []leftKey, []MCPServer, error)

func layoutOf(provider string) (layout, bool) {
	switch provider {
	case spec.ProviderClaude:
		return layout{
			agent: "Claude Code",
			trees: []string{".claude"},
			files: []string{".claude.json"},
			auto: []string{".claude/CLAUDE.md", ".claude/settings.json", ".claude/commands", ".claude/agents",
				".claude/skills", ".claude/output-styles", ".claude/hooks", ".claude.json"},
			never: map[string]string{ //nolint:gosec // G101: a file name and why it stays, not a credential
				".claude/.credentials.json": "Claude Code's login: the proxy adds the credential on the way out",
				// Where CLAUDE_CONFIG_DIR puts Claude Code's state: only its
				// MCP servers are carried, through ~/.claude.json.
				".claude/.claude.json*": "Claude Code's account and login state",
			},
			filters: map[string]filter{
				".claude/settings.json": func(o *Options, src []byte, _ string, bottle map[string]any) ([]byte, []leftKey, []MCPServer, error) {
					b, left, err := o.claudeSettings(src, bottle)
					return b, left, nil, err
				},
				".claude.json": func(o *Options, src []byte, source string, _ map[string]any) ([]byte, []leftKey, []MCPServer, error) {
					return o.claudeState(src, source)
				},
			},
		}, true
	case spec.ProviderCodex:
		return layout{
			agent: "Codex",
			trees: []string{".codex"},
			auto:  []string{".codex/config.toml", ".codex/AGENTS.md", ".codex/prompts", ".codex/skills"},
			never: map[string]string{ //nolint:gosec // G101: a file name and why it stays, not a credential
				".codex/auth.json":         "Codex's login: the bottle logs Codex in with a placeholder the proxy replaces",
				".codex/.credentials.json": "logins of MCP servers stay on the host",
			},
			filters: map[string]filter{
				".codex/config.toml": func(o *Options, src []byte, source string, _ map[string]any) ([]byte, []leftKey, []MCPServer, error) {
					return o.codexConfig(src, source)
				},
			},
		}, true
	}
	return layout{}, false
}

// inLayout reports whether rel (home-relative) is part of the agent's
// configuration: in one of its trees or one of its files.
func (l layout) inLayout(rel string) bool {
	for _, t := range l.trees {
		if rel == t || strings.HasPrefix(rel, t+"/") {
			return true
		}
	}
	return slices.Contains(l.files, rel)
}

func (l layout) where() string {
	var w []string
	for _, t := range l.trees {
		w = append(w, "~/"+t)
	}
	for _, f := range l.files {
		w = append(w, "~/"+f)
	}
	return strings.Join(w, " or ")
}

// Collect reads the user's configuration for o.Provider as o.Setting says.
// It returns an error, and no snapshot, when a carried file holds a
// secret, when the bounds are exceeded, or when agent.user_config lists a
// path that is not the agent's configuration.
func Collect(o Options) (*Snapshot, error) {
	snap := &Snapshot{Files: []File{}}
	l, ok := layoutOf(o.Provider)
	if !ok || o.Setting.Mode == spec.UserConfigNone || o.Home == "" {
		return snap, nil
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	var bottle map[string]any
	if len(o.BottleSettings) > 0 {
		var err error
		if bottle, err = decodeJSON(o.BottleSettings); err != nil {
			return nil, fmt.Errorf("reading the bottle's own Claude Code settings: %w", err)
		}
	}
	includes, excludes := l.auto, o.Setting.Excludes()
	if o.Setting.Mode == spec.UserConfigList {
		if in := o.Setting.Includes(); len(in) > 0 || len(excludes) == 0 {
			includes = in
		}
	}
	for _, rel := range includes {
		if !l.inLayout(rel) {
			return nil, fmt.Errorf("agent.user_config: ~/%s is not part of %s's configuration: list paths under %s",
				rel, l.agent, l.where())
		}
	}
	c := &collector{o: &o, l: l, snap: snap, excludes: excludes, listed: o.Setting.Mode == spec.UserConfigList,
		seen: map[string]bool{}, roots: map[string]*os.Root{}, bottle: bottle}
	defer c.close()
	for _, rel := range includes {
		if err := c.add(rel); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(snap.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	// Every file is checked before any is handed out: a secret stops the
	// whole snapshot, so nothing is copied.
	for _, f := range snap.Files {
		if found := FindSecret(f.Content, o.Secrets); found != nil {
			found.Line = found.lineIn(f.src)
			return nil, &SecretError{File: f.Source, Entry: "~/" + f.Path, Finding: *found}
		}
	}
	return snap, nil
}

type collector struct {
	o        *Options
	l        layout
	snap     *Snapshot
	excludes []string
	listed   bool
	seen     map[string]bool
	roots    map[string]*os.Root
	bottle   map[string]any
	files    int
	bytes    int64
	// top is the entry of the setting being collected, for bound errors.
	top string
}

func (c *collector) close() {
	for _, r := range c.roots {
		_ = r.Close() // opened to read only
	}
}

func (c *collector) leave(rel, key, reason string) {
	c.snap.LeftOut = append(c.snap.LeftOut, LeftOut{Path: c.display(rel), Key: key, Reason: reason})
}

// root opens the folder a home-relative path is in: the agent's tree it
// belongs to, or the home itself for the agent's files there. Symlinks are
// followed only inside it.
func (c *collector) root(rel string) (r *os.Root, base string, err error) {
	base = c.base(rel)
	if r, ok := c.roots[base]; ok {
		return r, base, nil
	}
	dir := filepath.Join(c.o.Home, filepath.FromSlash(base))
	if c.o.ConfigDir != "" {
		dir = c.o.ConfigDir
	}
	r, err = os.OpenRoot(dir)
	if err != nil {
		return nil, base, err
	}
	c.roots[base] = r
	return r, base, nil
}

// base is the tree of the agent's a home-relative path is in; "" for the
// agent's files in the home itself.
func (c *collector) base(rel string) string {
	for _, t := range c.l.trees {
		if rel == t || strings.HasPrefix(rel, t+"/") {
			return t
		}
	}
	return ""
}

// display is where a home-relative path is on the host, as the user
// writes it.
func (c *collector) display(rel string) string {
	if c.o.ConfigDir == "" {
		return "~/" + rel
	}
	return filepath.Join(c.o.ConfigDir, strings.TrimPrefix(strings.TrimPrefix(rel, c.base(rel)), "/"))
}

func (c *collector) excluded(rel string) bool {
	for a := rel; a != "." && a != "/"; a = path.Dir(a) {
		for _, pat := range c.excludes {
			if ok, _ := path.Match(pat, a); ok {
				return true
			}
		}
	}
	return false
}

// add collects one entry of the setting: a file or a folder.
func (c *collector) add(rel string) error {
	c.top = rel
	r, base, err := c.root(rel)
	if errors.Is(err, fs.ErrNotExist) {
		if c.listed {
			c.leave(rel, "", "not found")
		}
		return nil
	}
	if err != nil {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	inner := strings.TrimPrefix(strings.TrimPrefix(rel, base), "/")
	if inner == "" {
		inner = "."
	}
	return c.visit(r, base, inner, rel, true)
}

func (c *collector) visit(r *os.Root, base, inner, rel string, top bool) error {
	if c.seen[rel] {
		return nil
	}
	c.seen[rel] = true
	for pattern, reason := range c.l.never {
		if ok, _ := path.Match(pattern, rel); ok {
			c.leave(rel, "", "never carried: "+reason)
			return nil
		}
	}
	if c.excluded(rel) {
		c.leave(rel, "", "excluded by agent.user_config")
		return nil
	}
	fi, err := r.Lstat(inner)
	if errors.Is(err, fs.ErrNotExist) {
		if top && c.listed {
			c.leave(rel, "", "not found")
		}
		return nil
	}
	if err != nil {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	if c.files++; c.files > c.o.MaxFiles {
		return c.tooMuch(fmt.Sprintf("more than %d files", c.o.MaxFiles))
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := r.Stat(inner)
		switch {
		case err != nil:
			c.leave(rel, "", fmt.Sprintf("a symlink whose target is missing or outside %s: not followed", c.display(base)))
			return nil
		case target.IsDir():
			c.leave(rel, "", "a symlink to a folder: not followed")
			return nil
		}
		fi = target
	}
	switch {
	case fi.IsDir():
		return c.dir(r, base, inner, rel)
	case fi.Mode().IsRegular():
		return c.file(r, inner, rel, fi)
	}
	c.leave(rel, "", "not a regular file (a device, socket or pipe)")
	return nil
}

func (c *collector) dir(r *os.Root, base, inner, rel string) error {
	f, err := r.Open(inner)
	if err != nil {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	// One more than the bound is enough to know it is exceeded.
	ents, err := f.ReadDir(c.o.MaxFiles + 1)
	_ = f.Close() // a directory, opened to read only
	if err != nil && !errors.Is(err, io.EOF) {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		if err := c.visit(r, base, path.Join(inner, e.Name()), path.Join(rel, e.Name()), false); err != nil {
			return err
		}
	}
	return nil
}

func (c *collector) file(r *os.Root, inner, rel string, fi fs.FileInfo) error {
	source := c.display(rel)
	flt := c.l.filters[rel]
	limit := c.o.MaxBytes - c.bytes
	if flt != nil {
		limit = maxSourceBytes
	}
	if fi.Size() > limit {
		return c.tooMuch(fmt.Sprintf("more than %d bytes", c.o.MaxBytes))
	}
	f, err := r.Open(inner)
	if err != nil {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	content, err := io.ReadAll(io.LimitReader(f, limit+1))
	_ = f.Close() // a directory, opened to read only
	if err != nil {
		c.leave(rel, "", fmt.Sprintf("cannot be read: %v", err))
		return nil
	}
	if int64(len(content)) > limit {
		return c.tooMuch(fmt.Sprintf("more than %d bytes", c.o.MaxBytes))
	}
	var src []byte
	mode := fs.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	if flt != nil {
		out, left, mcp, err := flt(c.o, content, source, c.bottle)
		c.snap.MCPServers = append(c.snap.MCPServers, mcp...)
		for _, k := range left {
			c.leave(rel, k.Key, k.Reason)
		}
		if err != nil {
			c.leave(rel, "", fmt.Sprintf("not carried: it cannot be read as %s's configuration (%v); fix it, or leave it out with agent.user_config", c.l.agent, err))
			return nil
		}
		if out == nil {
			return nil
		}
		src, content, mode = content, out, 0o600
		if c.bytes+int64(len(content)) > c.o.MaxBytes {
			return c.tooMuch(fmt.Sprintf("more than %d bytes", c.o.MaxBytes))
		}
	}
	c.bytes += int64(len(content))
	c.snap.Files = append(c.snap.Files, File{Path: rel, Source: source, Mode: mode, Size: len(content), Content: content, src: src})
	return nil
}

func (c *collector) tooMuch(what string) error {
	return fmt.Errorf("agent.user_config: your %s configuration holds %s (reached in ~/%s); the bottle carries at most %d files "+
		"and %d bytes: leave part of it out (agent.user_config: [\"!~/%s\"]) or run with --no-user-config",
		c.l.agent, what, c.top, c.o.MaxFiles, c.o.MaxBytes, c.top)
}

// UnreachableMCP lists the carried remote MCP servers whose host the
// egress rules do not allow (allowed answers for a host and port).
func (s *Snapshot) UnreachableMCP(allowed func(host string, port int) bool) []MCPServer {
	var out []MCPServer
	for _, m := range s.MCPServers {
		if m.Carried && m.Host != "" && !allowed(m.Host, m.Port) {
			out = append(out, m)
		}
	}
	return out
}
