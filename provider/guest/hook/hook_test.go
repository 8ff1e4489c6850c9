package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/supervisortest"
	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// sup is a real supervisor on loopback and what a hook in the bottle has:
// the environment the plan gives it and the token file.
type sup struct {
	op  *client.Client
	env map[string]string
}

func (s sup) getenv(k string) string { return s.env[k] }

func startSupervisor(t *testing.T, kinds []approval.Kind, timeout time.Duration) sup {
	t.Helper()
	dir := t.TempDir()
	agentFile, opFile := filepath.Join(dir, "agent.token"), filepath.Join(dir, "operator.token")
	os.WriteFile(agentFile, []byte("agent-token-0123456789\n"), 0o600)
	os.WriteFile(opFile, []byte("operator-token-0123456789"), 0o600)
	d := supervisor.Duration(timeout)
	_, addr, _ := supervisortest.Start(t, supervisor.Config{
		Bottle: "hooks", AgentTokenFile: agentFile, OperatorTokenFile: opFile,
		Approvals: supervisor.Policy{Kinds: kinds, Timeout: &d},
	})
	op, err := client.New(addr, "operator-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	return sup{op: op, env: map[string]string{
		guest.EnvSuperviseURL: "http://" + addr, guest.EnvTokenFile: agentFile,
		// As in the bottle: a proxy in the environment, which the hook
		// must not use for the supervisor.
		"HTTP_PROXY": "http://127.0.0.1:1", "http_proxy": "http://127.0.0.1:1",
	}}
}

type hookRun struct {
	err            error
	stdout, stderr string
}

func runHookWith(ctx context.Context, s sup, args []string, input string) hookRun {
	var out, errb bytes.Buffer
	err := run(ctx, args, strings.NewReader(input), &out, &errb, s.getenv)
	return hookRun{err, out.String(), errb.String()}
}

func decisionOf(t *testing.T, r hookRun) (string, string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("hook: %v (%s)", r.err, r.stderr)
	}
	var d hookDecision
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("the hook's answer is not Claude Code's JSON: %q: %v", r.stdout, err)
	}
	if d.HookSpecificOutput.HookEventName != "PreToolUse" {
		t.Fatalf("answer %q", r.stdout)
	}
	return d.HookSpecificOutput.PermissionDecision, d.HookSpecificOutput.PermissionDecisionReason
}

const preToolUse = `{"session_id":"s1","transcript_path":"/home/agent/.claude/t.jsonl","cwd":"/workspace",
"permission_mode":"bypassPermissions","hook_event_name":"PreToolUse","tool_name":"Bash",
"tool_input":{"command":"git push origin HEAD","description":"push"},"tool_use_id":"toolu_1"}`

func TestHookPostsEvents(t *testing.T) {
	s := startSupervisor(t, nil, time.Minute)
	big := strings.Repeat("x", 100<<10)
	in := `{"session_id":"s1","transcript_path":"/t","hook_event_name":"PostToolUse","tool_name":"Write",
"tool_input":{"file_path":"/workspace/a.go","content":"` + big + `"},"tool_response":{"success":true,"content":"` + big + `"}}`
	r := runHookWith(context.Background(), s, nil, in)
	if r.err != nil || r.stdout != "" || r.stderr != "" {
		t.Fatalf("event hook: %+v", r)
	}
	r = runHookWith(context.Background(), s, nil, `{"hook_event_name":"UserPromptSubmit","prompt":"fix   the\ntests"}`)
	if r.err != nil || r.stderr != "" {
		t.Fatalf("prompt hook: %+v", r)
	}
	evs, err := s.op.Events(context.Background(), 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v %v", evs, err)
	}
	if evs[0].Type != "hook.PostToolUse" || evs[0].Source != api.SourceAgent || evs[0].Message != "Write(/workspace/a.go)" {
		t.Errorf("event %+v", evs[0])
	}
	var data map[string]any
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if _, ok := data["tool_response"]; ok || data["transcript_path"] != nil || data["session_id"] != "s1" {
		t.Errorf("data %v", data)
	}
	if c, _ := data["tool_input"].(map[string]any)["content"].(string); len(c) > maxFieldBytes+4 || !strings.HasSuffix(c, "…") {
		t.Errorf("content kept at %d bytes", len(c))
	}
	if evs[1].Type != "hook.UserPromptSubmit" || evs[1].Message != "fix the tests" {
		t.Errorf("event %+v", evs[1])
	}
}

func TestHookNeverStopsTheAgent(t *testing.T) {
	s := startSupervisor(t, nil, time.Minute)
	for name, tc := range map[string]struct {
		env   map[string]string
		input string
	}{
		"bad input":      {s.env, `not json`},
		"no supervisor":  {map[string]string{guest.EnvSuperviseURL: "http://127.0.0.1:1", guest.EnvTokenFile: s.env[guest.EnvTokenFile]}, `{"hook_event_name":"Stop"}`},
		"no token file":  {map[string]string{guest.EnvSuperviseURL: s.env[guest.EnvSuperviseURL], guest.EnvTokenFile: "/nonexistent"}, `{"hook_event_name":"Stop"}`},
		"no environment": {map[string]string{}, `{"hook_event_name":"Stop"}`},
		"wrong token":    {map[string]string{guest.EnvSuperviseURL: s.env[guest.EnvSuperviseURL], guest.EnvTokenFile: writeTemp(t, "nope")}, `{"hook_event_name":"Stop"}`},
		"odd event name": {s.env, `{"hook_event_name":"a b/c"}`},
		"no event name":  {s.env, `{}`},
	} {
		r := runHookWith(context.Background(), sup{env: tc.env}, nil, tc.input)
		if r.err != nil || r.stdout != "" {
			t.Errorf("%s: %+v", name, r)
		}
		if name == "odd event name" || name == "no event name" {
			if r.stderr != "" {
				t.Errorf("%s: %s", name, r.stderr)
			}
		} else if !strings.Contains(r.stderr, "not recorded") {
			t.Errorf("%s: no warning: %q", name, r.stderr)
		}
	}
	// The cases run in map order, so the two recorded events may come in
	// either order.
	evs, _ := s.op.Events(context.Background(), 0)
	types := map[string]bool{}
	for _, e := range evs {
		types[e.Type] = true
	}
	if len(evs) != 2 || !types["hook.abc"] || !types["hook.unknown"] {
		t.Errorf("events %+v", evs)
	}
	if err := run(context.Background(), []string{"extra"}, strings.NewReader("{}"), io.Discard, io.Discard, s.getenv); err == nil {
		t.Error("usage error not reported")
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHookAsksApproval drives the PreToolUse hook against a real
// supervisor: the call is held until the operator decides, and the hook
// prints Claude Code's decision.
func TestHookAsksApproval(t *testing.T) {
	for _, decision := range []approval.Decision{approval.AllowOnce, approval.Deny} {
		t.Run(string(decision), func(t *testing.T) {
			s := startSupervisor(t, []approval.Kind{approval.Tool}, time.Minute)
			res := make(chan hookRun, 1)
			go func() { res <- runHookWith(context.Background(), s, []string{"--approve"}, preToolUse) }()
			var held []api.Approval
			for deadline := time.Now().Add(10 * time.Second); len(held) == 0; time.Sleep(5 * time.Millisecond) {
				var err error
				if held, err = s.op.Approvals(context.Background()); err != nil {
					t.Fatal(err)
				}
				if time.Now().After(deadline) {
					t.Fatal("nothing pending")
				}
			}
			a := held[0]
			if a.Kind != approval.Tool || a.Subject != "Bash(git push origin HEAD)" || !strings.Contains(a.Detail, `"description":"push"`) || !strings.HasPrefix(a.Requester, "agent ") {
				t.Fatalf("held %+v", a)
			}
			select {
			case r := <-res:
				t.Fatalf("the hook answered before anyone decided: %+v", r)
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := s.op.Decide(context.Background(), a.ID, decision); err != nil {
				t.Fatal(err)
			}
			var r hookRun
			select {
			case r = <-res:
			case <-time.After(30 * time.Second):
				t.Fatal("the hook did not answer")
			}
			d, reason := decisionOf(t, r)
			switch decision {
			case approval.AllowOnce:
				if d != "allow" || !strings.Contains(reason, "approved") {
					t.Errorf("allow: %s %q", d, reason)
				}
			default:
				if d != "deny" || !strings.Contains(reason, "denied by the human") || !strings.Contains(reason, "Bash(git push origin HEAD)") {
					t.Errorf("deny: %s %q", d, reason)
				}
			}
		})
	}
}

// TestHookFailsClosed: every way the approval can go wrong denies.
func TestHookFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("tool approvals off", func(t *testing.T) {
		s := startSupervisor(t, []approval.Kind{approval.Egress}, time.Minute)
		if d, reason := decisionOf(t, runHookWith(ctx, s, []string{"--approve"}, preToolUse)); d != "deny" || !strings.Contains(reason, "without asking") {
			t.Errorf("%s %q", d, reason)
		}
	})
	t.Run("supervisor timeout", func(t *testing.T) {
		s := startSupervisor(t, []approval.Kind{approval.Tool}, time.Second)
		if d, reason := decisionOf(t, runHookWith(ctx, s, []string{"--approve"}, preToolUse)); d != "deny" || !strings.Contains(reason, "in time") {
			t.Errorf("%s %q", d, reason)
		}
	})
	t.Run("hook's own wait", func(t *testing.T) {
		s := startSupervisor(t, []approval.Kind{approval.Tool}, time.Minute)
		if d, reason := decisionOf(t, runHookWith(ctx, s, []string{"--approve", "--wait", "300ms"}, preToolUse)); d != "deny" || !strings.Contains(reason, "no answer") {
			t.Errorf("%s %q", d, reason)
		}
		// Giving up withdrew the request.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if p, _ := s.op.Approvals(ctx); len(p) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the request is still pending")
			}
		}
	})
	s := startSupervisor(t, []approval.Kind{approval.Tool}, time.Minute)
	for name, tc := range map[string]struct {
		env   map[string]string
		args  []string
		input string
	}{
		"no supervisor": {map[string]string{guest.EnvSuperviseURL: "http://127.0.0.1:1", guest.EnvTokenFile: s.env[guest.EnvTokenFile]}, []string{"--approve"}, preToolUse},
		"wrong token":   {map[string]string{guest.EnvSuperviseURL: s.env[guest.EnvSuperviseURL], guest.EnvTokenFile: writeTemp(t, "nope")}, []string{"--approve"}, preToolUse},
		"no env":        {map[string]string{}, []string{"--approve"}, preToolUse},
		"bad input":     {s.env, []string{"--approve"}, `{"tool_name":`},
		"no tool":       {s.env, []string{"--approve"}, `{"hook_event_name":"PreToolUse"}`},
		"bad flags":     {s.env, []string{"--approve", "--wait", "-1s"}, preToolUse},
	} {
		d, reason := decisionOf(t, runHookWith(ctx, sup{env: tc.env}, tc.args, tc.input))
		if d != "deny" || !strings.HasPrefix(reason, "docker bottle: ") {
			t.Errorf("%s: %s %q", name, d, reason)
		}
	}
	if p, _ := s.op.Approvals(ctx); len(p) != 0 {
		t.Errorf("pending after refusals: %+v", p)
	}
}

func TestToolSubject(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		name  string
		input any
		want  string
	}{
		{"Bash", map[string]any{"command": "git   status\n&& ls"}, "Bash(git status && ls)"},
		{"Edit", map[string]any{"file_path": "/workspace/x.go", "old_string": "a"}, "Edit(/workspace/x.go)"},
		{"WebFetch", map[string]any{"url": "https://example.com", "prompt": "p"}, "WebFetch(https://example.com)"},
		{"mcp__db__query", map[string]any{"sql": "select 1"}, `mcp__db__query({"sql":"select 1"})`},
		{"TodoWrite", nil, "TodoWrite"},
		{"Bash", map[string]any{"command": long}, "Bash(" + strings.Repeat("é", maxSubjectLen-1) + "…)"},
	} {
		if got := toolSubject(tc.name, tc.input); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.name, tc.input, got, tc.want)
		}
	}
	d := detail(map[string]any{"content": long + long + long + long + long + long + long + long})
	if len(d) > maxDetailBytes || !strings.HasSuffix(d, "…") {
		t.Errorf("detail of %d bytes", len(d))
	}
}
