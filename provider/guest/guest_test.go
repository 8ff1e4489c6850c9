package guest

import (
	"slices"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	env := map[string]string{"HOME": "/home/agent"}
	getenv := func(k string) string { return env[k] }
	l, err := Apply(PromptCodexAgentsFile, []string{"codex"}, "/run/bottle/prompt", []byte("be brief"), getenv)
	if err != nil || string(l.Files["/home/agent/.codex/AGENTS.md"]) != "be brief" || !slices.Equal(l.Argv, []string{"codex"}) {
		t.Errorf("codex: %+v %v", l, err)
	}
	env["CODEX_HOME"] = "/tmp/cx"
	if l, _ := Apply(PromptCodexAgentsFile, []string{"codex"}, "/p", []byte("x"), getenv); string(l.Files["/tmp/cx/AGENTS.md"]) != "x" {
		t.Errorf("CODEX_HOME: %+v", l)
	}
	if _, err := Apply(PromptCodexAgentsFile, []string{"codex"}, "/p", []byte("x"), func(string) string { return "" }); err == nil {
		t.Error("codex without HOME accepted")
	}
	argv := []string{"claude", "-x"}
	l, err = Apply(PromptAppendSystemPromptFile, argv, "/run/bottle/prompt", []byte("hi"), getenv)
	if err != nil || !slices.Equal(l.Argv, []string{"claude", "-x", "--append-system-prompt-file", "/run/bottle/prompt"}) || l.Files != nil {
		t.Errorf("claude: %+v %v", l, err)
	}
	if !slices.Equal(argv, []string{"claude", "-x"}) {
		t.Errorf("Apply changed its argument: %q", argv)
	}
	if _, err := Apply("argument", argv, "/p", nil, getenv); err == nil || !strings.Contains(err.Error(), "append-system-prompt-file") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := Apply(PromptNone, nil, "/p", nil, getenv); err == nil {
		t.Error("no command accepted")
	}
}
