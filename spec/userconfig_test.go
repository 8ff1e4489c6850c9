package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestUserConfigForms(t *testing.T) {
	cases := []struct {
		yaml     string
		mode     string
		includes []string
		excludes []string
	}{
		{"agent:\n  user_config: auto\n", UserConfigAuto, nil, nil},
		{"agent:\n  user_config: none\n", UserConfigNone, nil, nil},
		{"agent:\n  user_config: [\"~/.claude/CLAUDE.md\", .claude/commands/, \"!~/.claude/commands/private-*\"]\n",
			UserConfigList, []string{".claude/CLAUDE.md", ".claude/commands"}, []string{".claude/commands/private-*"}},
		{"agent:\n  user_config: []\n", UserConfigList, nil, nil},
	}
	for _, c := range cases {
		s, err := Parse("f.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		u := s.Agent.UserConfig
		if u.Mode != c.mode || !slices.Equal(u.Includes(), c.includes) || !slices.Equal(u.Excludes(), c.excludes) {
			t.Errorf("%q: got %+v (includes %q, excludes %q)", c.yaml, u, u.Includes(), u.Excludes())
		}
		// What config prints reads back the same, in YAML and in JSON.
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("out.yaml", out)
		if err != nil || back.Agent.UserConfig.Mode != u.Mode || !slices.Equal(back.Agent.UserConfig.Paths, u.Paths) {
			t.Errorf("YAML round trip of %q: %s -> %+v %v", c.yaml, out, back, err)
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON Spec
		if err := json.Unmarshal(j, &fromJSON); err != nil || fromJSON.Agent.UserConfig.Mode != u.Mode ||
			!slices.Equal(fromJSON.Agent.UserConfig.Paths, u.Paths) {
			t.Errorf("JSON round trip of %q: %s -> %+v %v", c.yaml, j, fromJSON.Agent.UserConfig, err)
		}
	}
}

func TestUserConfigErrorsAreLocated(t *testing.T) {
	cases := []struct{ name, yaml, where, text string }{
		{"unknown mode", "agent:\n  user_config: all\n", "f.yaml:2:16", "not one of auto, none, or a list"},
		{"mapping", "agent:\n  user_config:\n    paths: [a]\n", "f.yaml:3:10", "list of paths in your home"},
		{"absolute path", "agent:\n  user_config:\n    - /etc/passwd\n", "f.yaml:3:7", "write it as ~/PATH"},
		{"other user's home", "agent:\n  user_config:\n    - ~bob/.claude\n", "f.yaml:3:7", "write it as ~/PATH"},
		{"dot dot", "agent:\n  user_config:\n    - ~/.claude/../.ssh\n", "f.yaml:3:7", "leaves your home"},
		{"empty exclusion", "agent:\n  user_config: [\"!\"]\n", "f.yaml:2:17", "names no file"},
		{"bad glob", "agent:\n  user_config: [\"!~/.claude/[x\"]\n", "f.yaml:2:17", "not a valid path or glob"},
		{"glob to carry", "agent:\n  user_config: [\"~/.claude/skills/*\"]\n", "f.yaml:2:17", "globs only leave paths out"},
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

func TestUserConfigDefaultAndFlag(t *testing.T) {
	var s Spec
	if got := s.Resolve(Defaults{}).Agent.UserConfig.Mode; got != UserConfigAuto {
		t.Errorf("default user_config %q, want auto", got)
	}
	f, err := Parse("f.yaml", []byte("agent:\n  user_config: [~/.claude/CLAUDE.md]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Apply(Overrides{NoUserConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Resolve(Defaults{}).Agent.UserConfig; u.Mode != UserConfigNone || len(u.Paths) != 0 {
		t.Errorf("--no-user-config gave %+v", u)
	}
	if f.Agent.UserConfig.Mode != UserConfigList {
		t.Errorf("Apply changed its receiver: %+v", f.Agent.UserConfig)
	}
}

func TestEgressAllows(t *testing.T) {
	e := Egress{
		Allow: []Rule{{Host: "mcp.example.com"}, {Host: "*.tools.test", Ports: []int{8443}}, {Host: "10.0.0.5"}},
		Deny:  []Rule{{Host: "bad.tools.test", Ports: []int{8443}}, {Host: "mcp.example.com", Ports: []int{80}}},
	}
	for _, c := range []struct {
		host string
		port int
		want bool
	}{
		{"mcp.example.com", 443, true}, {"MCP.example.com.", 443, true}, {"mcp.example.com", 80, false}, {"mcp.example.com", 8080, false},
		{"other.example.com", 443, false}, {"a.tools.test", 8443, true}, {"tools.test", 8443, false},
		{"a.tools.test", 443, false}, {"bad.tools.test", 8443, false}, {"10.0.0.5", 443, true}, {"[10.0.0.5]", 80, true},
	} {
		if got := e.Allows(c.host, c.port); got != c.want {
			t.Errorf("Allows(%s, %d) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
}
