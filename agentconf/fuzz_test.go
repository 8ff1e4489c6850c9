package agentconf

import (
	"bytes"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzFindSecret: a GitHub token planted anywhere in any text, between
// spaces, is found; nothing panics.
func FuzzFindSecret(f *testing.F) {
	f.Add([]byte("plain text"), uint(3))
	f.Add([]byte(settingsJSON), uint(40))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\n"), uint(0))
	f.Add([]byte("sk-ant-sk-sk-"), uint(7))
	f.Fuzz(func(t *testing.T, text []byte, at uint) {
		if len(text) > 1<<16 {
			return
		}
		FindSecret(text, []Secret{{Name: "S", Value: "configured-value"}})
		i := int(at % uint(len(text)+1))
		planted := append(append(append(bytes.Clone(text[:i]), ' '), githubToken+" "...), text[i:]...)
		if FindSecret(planted, nil) == nil {
			t.Fatalf("token planted at %d not found in %q", i, planted)
		}
	})
}

// FuzzFilters: whatever a settings file holds, the filters do not panic,
// what they keep reads back as the same format, and holds nothing a second
// pass would strip.
func FuzzFilters(f *testing.F) {
	f.Add([]byte(settingsJSON))
	f.Add([]byte(claudeState))
	f.Add([]byte(codexTOML))
	f.Add([]byte(`{"env": {"A_TOKEN": 1}, "permissions": null}`))
	f.Add([]byte("[mcp_servers.a]\nurl = \"http://[::1]:99999/\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		o := &Options{CommandExists: func(name string) bool { return len(name)%2 == 0 }}
		if out, _, err := o.claudeSettings(src, map[string]any{"model": "x"}); err == nil {
			m, err := decodeJSON(out)
			if err != nil {
				t.Fatalf("settings kept %q, which does not read back: %v", out, err)
			}
			if left := stripCredentials(m, ""); len(left) > 0 {
				t.Fatalf("settings kept credentials %+v in %q", left, out)
			}
		}
		if out, _, mcp, err := o.claudeState(src, "~/.claude.json"); err == nil && out != nil {
			m, err := decodeJSON(out)
			if err != nil {
				t.Fatalf("state kept %q, which does not read back: %v", out, err)
			}
			checkKept(t, m, "mcpServers", mcp, out)
		}
		if out, _, mcp, err := o.codexConfig(src, "~/.codex/config.toml"); err == nil {
			var m map[string]any
			if err := toml.Unmarshal(out, &m); err != nil {
				t.Fatalf("config kept %q, which does not read back: %v", out, err)
			}
			checkKept(t, m, "mcp_servers", mcp, out)
		}
	})
}

func checkKept(t *testing.T, m map[string]any, key string, mcp []MCPServer, out []byte) {
	t.Helper()
	if left := stripCredentials(m, ""); len(left) > 0 {
		t.Fatalf("kept credentials %+v in %q", left, out)
	}
	servers, _ := m[key].(map[string]any)
	for _, s := range mcp {
		if _, kept := servers[s.Name]; kept != s.Carried {
			t.Fatalf("server %q carried=%v but kept=%v in %q", s.Name, s.Carried, kept, out)
		}
	}
}
