package spec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Modes of agent.user_config.
const (
	// UserConfigAuto carries the agent's usual configuration files (package
	// agentconf lists them).
	UserConfigAuto = "auto"
	// UserConfigNone carries nothing.
	UserConfigNone = "none"
	// UserConfigList carries the paths listed.
	UserConfigList = "list"
)

// UserConfig is agent.user_config: which of the user's own agent settings
// (instructions, commands, skills, MCP servers...) are copied into the
// agent's home at the bottle's first start. bottle.yaml gives "auto"
// (the default), "none", or a list of paths in the user's home, written
// "~/.claude/CLAUDE.md" or ".claude/CLAUDE.md"; a "!" in front of a path
// (or of a glob, "!~/.claude/skills/private-*") leaves it out. A list of
// only exclusions is "auto" without them.
type UserConfig struct {
	Mode  string
	Paths []string
}

// UnmarshalYAML reads "auto", "none" or a list of paths.
func (u *UserConfig) UnmarshalYAML(n ast.Node) error {
	switch n.Type() {
	case ast.SequenceType:
		var list []string
		if err := yaml.NodeToValue(n, &list, yaml.Strict()); err != nil {
			return err
		}
		*u = UserConfig{Mode: UserConfigList, Paths: list}
		if u.Paths == nil {
			u.Paths = []string{}
		}
		return nil
	case ast.StringType:
		*u = UserConfig{Mode: scalar(n)}
		return nil
	case ast.NullType:
		*u = UserConfig{}
		return nil
	}
	return located(n, `user_config is "auto", "none" or a list of paths in your home such as `+
		`["~/.claude/CLAUDE.md", "!~/.claude/skills/private"]`)
}

// MarshalYAML writes the mode, or the list.
func (u UserConfig) MarshalYAML() (any, error) { return u.value(), nil }

// MarshalJSON writes the mode, or the list.
func (u UserConfig) MarshalJSON() ([]byte, error) { return json.Marshal(u.value()) }

func (u UserConfig) value() any {
	if u.Mode == UserConfigList {
		if u.Paths == nil {
			return []string{}
		}
		return u.Paths
	}
	return u.Mode
}

// UnmarshalJSON reads what MarshalJSON writes.
func (u *UserConfig) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		if list == nil {
			list = []string{}
		}
		*u = UserConfig{Mode: UserConfigList, Paths: list}
		return nil
	}
	var mode string
	if err := json.Unmarshal(b, &mode); err != nil {
		return fmt.Errorf(`user_config must be "auto", "none" or a list of paths: %w`, err)
	}
	*u = UserConfig{Mode: mode}
	return nil
}

// IsZero reports whether nothing was given (omitempty).
func (u UserConfig) IsZero() bool { return u.Mode == "" && u.Paths == nil }

func (u UserConfig) clone() UserConfig {
	return UserConfig{Mode: u.Mode, Paths: slices.Clone(u.Paths)}
}

// Includes are the listed paths to carry (home-relative, cleaned, without
// "~/"); Excludes the ones written with "!". Valid only once validated.
func (u UserConfig) Includes() []string { return u.paths(false) }

// Excludes is the list's "!" entries, without the "!": what is left out
// of the carried settings.
func (u UserConfig) Excludes() []string { return u.paths(true) }

func (u UserConfig) paths(excluded bool) []string {
	var out []string
	for _, p := range u.Paths {
		rest, ex := strings.CutPrefix(strings.TrimSpace(p), "!")
		if ex == excluded {
			out = append(out, HomeRelative(rest))
		}
	}
	return out
}

// HomeRelative turns "~/.claude/x" or ".claude/x" into ".claude/x".
func HomeRelative(p string) string {
	p = strings.TrimSpace(p)
	p = strings.TrimPrefix(p, "~/")
	return path.Clean(p)
}

func (u UserConfig) validate(add func(path, format string, args ...any)) {
	const key = "$.agent.user_config"
	switch u.Mode {
	case "", UserConfigAuto, UserConfigNone:
		return
	case UserConfigList:
	default:
		add(key, `user_config %q is not one of auto, none, or a list of paths in your home (such as ["~/.claude/CLAUDE.md"])`, u.Mode)
		return
	}
	for i, p := range u.Paths {
		at := fmt.Sprintf("%s[%d]", key, i)
		rest, excluded := strings.CutPrefix(strings.TrimSpace(p), "!")
		rest = strings.TrimSpace(rest)
		rel := strings.TrimPrefix(rest, "~/")
		switch {
		case rel == "" || rel == "~" || rel == ".":
			add(at, "%q names no file: write a path in your home such as ~/.claude/CLAUDE.md", p)
		case strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, "~"):
			add(at, "%q is not in your home as written: write it as ~/PATH or relative to your home (~/.claude/commands)", p)
		case slices.Contains(strings.Split(rel, "/"), ".."):
			add(at, "%q leaves your home with ..: write a path inside it (~/.claude/commands)", p)
		case !excluded && strings.ContainsAny(rel, "*?[\\"):
			add(at, "%q is a glob: globs only leave paths out (\"!~/.claude/skills/private-*\"); to carry, list a file or a folder", p)
		default:
			if _, err := path.Match(rel, ""); err != nil {
				add(at, "%q is not a valid path or glob: %v", p, err)
			}
		}
	}
}

// Allows reports whether the egress rules let the agent reach host:port by
// name, as the bundle's proxy decides before it resolves anything: a deny
// rule wins over allow rules; "*.suffix" matches subdomains only (never
// an IP literal); ports default to 443 and 80. `config` uses it to say
// which of the user's remote MCP servers the bottle could not reach.
func (e Egress) Allows(host string, port int) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	matches := func(r Rule) bool {
		ports := r.Ports
		if len(ports) == 0 {
			ports = []int{443, 80}
		}
		if !slices.Contains(ports, port) {
			return false
		}
		if suffix, ok := strings.CutPrefix(r.Host, "*."); ok {
			_, err := netip.ParseAddr(host)
			return err != nil && strings.HasSuffix(host, "."+suffix)
		}
		return host == r.Host
	}
	return !slices.ContainsFunc(e.Deny, matches) && slices.ContainsFunc(e.Allow, matches)
}
