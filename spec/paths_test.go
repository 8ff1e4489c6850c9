package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBase: a spec's relative paths start from its file's folder (made
// absolute), or from the given folder without a spec file.
func TestBase(t *testing.T) {
	if got := Base("", "/repo"); got != "/repo" {
		t.Errorf("no spec file: got %q, want /repo", got)
	}
	if got := Base("/repo/sub/bottle.yaml", "/repo"); got != "/repo/sub" {
		t.Errorf("spec file: got %q, want /repo/sub", got)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got := Base("sub/bottle.yaml", "/repo"); got != filepath.Join(wd, "sub") {
		t.Errorf("relative spec file: got %q, want %q", got, filepath.Join(wd, "sub"))
	}
}

// TestAgentDockerfile: agent.dockerfile and agent.context are relative to
// the base unless absolute; the context defaults to the base.
func TestAgentDockerfile(t *testing.T) {
	for _, c := range []struct {
		dockerfile, context, wantFile, wantCtx string
	}{
		{"Dockerfile", "", "/b/Dockerfile", "/b"},
		{"agent/Dockerfile", "agent", "/b/agent/Dockerfile", "/b/agent"},
		{"/abs/Dockerfile", "/abs/ctx", "/abs/Dockerfile", "/abs/ctx"},
		{"../Dockerfile", "..", "/Dockerfile", "/"},
	} {
		s := Spec{Agent: Agent{Dockerfile: c.dockerfile, Context: c.context}}
		f, ctx := s.AgentDockerfile("/b")
		if f != c.wantFile || ctx != c.wantCtx {
			t.Errorf("%q, %q: got %q, %q; want %q, %q", c.dockerfile, c.context, f, ctx, c.wantFile, c.wantCtx)
		}
	}
}

func TestCheckAgentDockerfile(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "Dockerfile"), []byte("FROM scratch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "ctx"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dockerfile, context, want string
	}{
		{"Dockerfile", "", ""},
		{"Dockerfile", "ctx", ""},
		{"nosuch", "", "agent.dockerfile nosuch: " + filepath.Join(base, "nosuch") + " is not a file"},
		{"ctx", "", "is not a file"},
		{"Dockerfile", "nosuch", "agent.context nosuch: " + filepath.Join(base, "nosuch") + " is not a directory"},
		{"Dockerfile", "Dockerfile", "is not a directory"},
	} {
		err := Spec{Agent: Agent{Dockerfile: c.dockerfile, Context: c.context}}.CheckAgentDockerfile(base)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q, %q: %v", c.dockerfile, c.context, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q, %q: got %v, want an error with %q", c.dockerfile, c.context, err, c.want)
		}
	}
}

// TestPrompt: agent.prompt comes first; agent.prompt_file is read relative
// to the base; a missing file says which setting named it.
func TestPrompt(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "prompt.txt"), []byte("from the file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		agent   Agent
		want    string
		wantErr string
	}{
		{Agent{}, "", ""},
		{Agent{Prompt: "inline", PromptFile: "prompt.txt"}, "inline", ""},
		{Agent{PromptFile: "prompt.txt"}, "from the file", ""},
		{Agent{PromptFile: filepath.Join(base, "prompt.txt")}, "from the file", ""},
		{Agent{PromptFile: "nosuch.txt"}, "", "reading agent.prompt_file"},
	} {
		got, err := Spec{Agent: c.agent}.Prompt(base)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%+v: got %v, want an error with %q", c.agent, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: got %q, %v; want %q", c.agent, got, err, c.want)
		}
	}
}

// TestExtraCAFile: egress.extra_ca is made absolute relative to the base
// and must exist.
func TestExtraCAFile(t *testing.T) {
	base := t.TempDir()
	ca := filepath.Join(base, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		extra, want, wantErr string
	}{
		{"", "", ""},
		{"ca.pem", ca, ""},
		{ca, ca, ""},
		{"nosuch.pem", "", "egress.extra_ca"},
	} {
		got, err := Spec{Egress: Egress{ExtraCA: c.extra}}.ExtraCAFile(base)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: got %v, want an error with %q", c.extra, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.extra, got, err, c.want)
		}
	}
}
