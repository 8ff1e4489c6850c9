package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

// TestListFormats runs the commands that list rows with each kind of
// --format `docker ps --format` takes: a table template prints headers,
// json and {{json .}} print the same object a line, a template prints no
// header and has docker's template functions.
func TestListFormats(t *testing.T) {
	b := newBottle(t, "fmt")
	ctx := context.Background()
	b.hold(approval.Egress, "example.com:443")
	id := b.waitPending(t, 1)[0].ID
	if _, err := b.agent.PostEvent(ctx, "note", "clear\x1b[2Jscreen", nil); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		cmd, format string
		want        string // a regexp the whole output must match
	}{
		{"approvals", `table {{.ID}}\t{{.Subject}}`, `^ID +SUBJECT\n` + id[:shortID] + ` +example.com:443\n$`},
		{"approvals", `{{.Kind}} {{upper .Subject}}`, `^egress EXAMPLE.COM:443\n$`},
		{"approvals", `{{.ID}}`, `^` + id[:shortID] + `\n$`},
		{"approvals", "table", `^ID +KIND +SUBJECT +REQUESTER +WAITING +DENIED IN +DETAIL\n` + id[:shortID] + ` +egress +example.com:443 +10.0.0.3:40000 +.*\n$`},
		{"events", `table {{.Source}}\t{{.Message}}`, `(?s)^SOURCE +MESSAGE\n.*agent +clear\\x1b\[2Jscreen\n$`},
		{"events", `{{.Type}}|{{.Message}}`, `(?s)^(?:[^\n]*\n)*note\|clear\\x1b\[2Jscreen\n$`},
		{"audit", `table {{.Source}}\t{{.Decision}}`, `^SOURCE +DECISION\n(?:supervisor +\w*\n)+$`},
		{"audit", `{{.Source}}`, `^(?:supervisor\n)+$`},
	} {
		t.Run(c.cmd+" "+c.format, func(t *testing.T) {
			out, _, err := runCommand(ctx, t, c.cmd, "--format", c.format, b.name)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(c.want).MatchString(out) {
				t.Fatalf("got\n%s\nwant %s", out, c.want)
			}
		})
	}

	// json is {{json .}}: the object as the supervisor's API has it.
	for _, cmd := range []string{"approvals", "events", "audit"} {
		byName, _, err := runCommand(ctx, t, cmd, "--format", "json", b.name)
		if err != nil {
			t.Fatal(err)
		}
		byTemplate, _, err := runCommand(ctx, t, cmd, "--format", "{{json .}}", b.name)
		if err != nil {
			t.Fatal(err)
		}
		if byName != byTemplate || byName == "" {
			t.Errorf("%s: json %q, {{json .}} %q", cmd, byName, byTemplate)
		}
		for _, line := range strings.Split(strings.TrimSuffix(byName, "\n"), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Errorf("%s: a line is not one JSON object: %q: %v", cmd, line, err)
			}
		}
	}
	out, _, err := runCommand(ctx, t, "approvals", "--format", "json", b.name)
	var a api.Approval
	if err != nil || json.Unmarshal([]byte(out), &a) != nil || a.ID != id {
		t.Fatalf("approvals json: %q %v", out, err)
	}
}

// TestObjectFormats renders one result as the commands that print one
// (doctor, check, config, build, prune) do.
func TestObjectFormats(t *testing.T) {
	type result struct {
		Name  string
		Items []string
	}
	v := result{Name: "a<b", Items: []string{"x", "y"}}
	for _, c := range []struct{ format, def, want string }{
		{"table", "table", "TEXT\n"},
		{"", "", "TEXT\n"},
		{"yaml", "yaml", "TEXT\n"},
		{"json", "table", `{"Name":"a<b","Items":["x","y"]}` + "\n"},
		{"{{json .}}", "", `{"Name":"a<b","Items":["x","y"]}` + "\n"},
		{"{{.Name}} {{join .Items \",\"}}", "table", "a<b x,y\n"},
	} {
		tmpl, err := objectFormat(c.format, c.def)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := writeObject(&out, tmpl, v, func(w io.Writer) error { _, err := io.WriteString(w, "TEXT\n"); return err }); err != nil || out.String() != c.want {
			t.Errorf("%q: %q %v, want %q", c.format, out.String(), err, c.want)
		}
	}
	if _, err := objectFormat("{{.Name", "table"); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("a broken template: %v", err)
	}
}

// TestConfigFormat runs config with its formats.
func TestConfigFormat(t *testing.T) {
	useStateDir(t)
	t.Chdir(t.TempDir())
	ctx := context.Background()
	out, _, err := runCommand(ctx, t, "config")
	if err != nil || !strings.Contains(out, "provider: claude") {
		t.Fatalf("yaml: %q %v", out, err)
	}
	out, _, err = runCommand(ctx, t, "config", "--format", "json")
	if err != nil || strings.Count(out, "\n") != 1 || !json.Valid([]byte(out)) {
		t.Fatalf("json: %q %v", out, err)
	}
	out, _, err = runCommand(ctx, t, "config", "--format", "{{.Agent.Provider}}")
	if err != nil || out != "claude\n" {
		t.Fatalf("template: %q %v", out, err)
	}
}
