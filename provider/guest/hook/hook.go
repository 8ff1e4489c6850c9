// Package hook is the helper's hook subcommand (Main): Claude Code's hooks
// in a bottle, which post the agent's events to the supervisor and ask it
// to approve tool calls.
package hook

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// Bounds on what the hook reads and sends.
const (
	maxHookInput   = 8 << 20 // a Write of a big file arrives whole
	maxSubjectLen  = 200     // runes of a tool call's argument in a subject
	maxDetailBytes = 4000    // the supervisor takes 4096
	maxFieldBytes  = 4 << 10 // one string field of an event's data
	eventTimeout   = 5 * time.Second
)

// Main is an agent's hook in the bottle: `bottle-bundle hook` reads one
// Claude Code hook input (JSON) on stdin and posts it to the supervisor as
// an event; it always exits 0, so a missing supervisor never stops the
// agent. `bottle-bundle hook --approve [--wait D]` is a PreToolUse hook: it
// asks the supervisor to approve the tool call, waits for the answer, and
// prints Claude Code's decision (allow or deny, with the reason Claude
// reads). Anything that goes wrong denies: the hook fails closed.
func Main(ctx context.Context, args []string) error {
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	approve := fs.Bool("approve", false, "ask the supervisor to approve the tool call and print Claude Code's PreToolUse decision")
	wait := fs.Duration("wait", 5*time.Minute+30*time.Second, "with --approve: deny when no answer came within this time")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *wait <= 0 {
		if *approve {
			return deny(stdout, "docker bottle: the approval hook is misconfigured (usage: bottle-bundle hook --approve [--wait D]); the tool call is blocked")
		}
		return errors.New("usage: bottle-bundle hook [--approve [--wait D]] < HOOK-INPUT.json")
	}

	in, err := readHookInput(stdin)
	var c *client.Client
	if err == nil {
		c, err = supervisorClient(getenv)
	}
	if !*approve {
		if err == nil {
			ectx, cancel := context.WithTimeout(ctx, eventTimeout)
			defer cancel()
			_, err = c.PostEvent(ectx, eventType(in), summary(in), eventData(in))
		}
		if err != nil {
			fmt.Fprintf(stderr, "docker bottle hook: the event was not recorded: %v\n", err)
		}
		return nil
	}

	if err != nil {
		return deny(stdout, fmt.Sprintf("docker bottle: this tool call needs a human's approval, which could not be asked (%v); it is blocked", err))
	}
	name, _ := in["tool_name"].(string)
	if name == "" {
		return deny(stdout, "docker bottle: the hook input names no tool; the call is blocked")
	}
	subject := toolSubject(name, in["tool_input"])
	actx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	ans, err := c.Ask(actx, subject, detail(in["tool_input"]))
	switch {
	case err != nil && actx.Err() != nil && ctx.Err() == nil:
		return deny(stdout, fmt.Sprintf("docker bottle: no answer to the approval of %s within %s; the tool call is denied", subject, *wait))
	case err != nil:
		return deny(stdout, fmt.Sprintf("docker bottle: asking a human to approve %s failed (%v); the tool call is blocked", subject, err))
	case ans.Decision.Allowed():
		return decide(stdout, "allow", fmt.Sprintf("docker bottle: %s approved (%s, by %s)", subject, ans.Decision, ans.By))
	}
	why := "denied by the human supervising this bottle"
	switch ans.By {
	case "timeout":
		why = "no one decided in time, so it was denied"
	case "policy", "limit", "shutdown":
		why = "denied without asking: " + ans.Reason
	}
	return deny(stdout, fmt.Sprintf("docker bottle: %s was sent for approval and %s. Do not retry it as it is; ask the user or take another way.", subject, why))
}

// readHookInput decodes the hook's JSON object.
func readHookInput(r io.Reader) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxHookInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading the hook input: %w", err)
	}
	if len(b) > maxHookInput {
		return nil, fmt.Errorf("the hook input is larger than %d bytes", maxHookInput)
	}
	var in map[string]any
	if err := json.Unmarshal(b, &in); err != nil || in == nil {
		return nil, fmt.Errorf("the hook input is not a JSON object: %v", err)
	}
	return in, nil
}

// supervisorClient reaches the supervisor with the agent's token, read from
// its file (the token is never in the environment).
func supervisorClient(getenv func(string) string) (*client.Client, error) {
	url, tokenFile := getenv(guest.EnvSuperviseURL), getenv(guest.EnvTokenFile)
	if url == "" || tokenFile == "" {
		return nil, fmt.Errorf("%s and %s must be set (the bottle's environment sets them)", guest.EnvSuperviseURL, guest.EnvTokenFile)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the bottle token: %w", err)
	}
	return client.New(url, strings.TrimSpace(string(tok)))
}

// Claude Code's PreToolUse answer: exit 0 with this JSON on stdout.
type hookDecision struct {
	HookSpecificOutput struct {
		HookEventName            string `json:"hookEventName"`
		PermissionDecision       string `json:"permissionDecision"`
		PermissionDecisionReason string `json:"permissionDecisionReason"`
	} `json:"hookSpecificOutput"`
}

func decide(w io.Writer, decision, reason string) error {
	var d hookDecision
	d.HookSpecificOutput.HookEventName = "PreToolUse"
	d.HookSpecificOutput.PermissionDecision = decision
	d.HookSpecificOutput.PermissionDecisionReason = reason
	return json.NewEncoder(w).Encode(d)
}

func deny(w io.Writer, reason string) error { return decide(w, "deny", reason) }

// eventType is "hook.<event>", e.g. "hook.PostToolUse".
func eventType(in map[string]any) string {
	name, _ := in["hook_event_name"].(string)
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return r
		}
		return -1
	}, name)
	if clean == "" {
		clean = "unknown"
	}
	return "hook." + truncate(clean, 64)
}

// summary is the event's one-line message.
func summary(in map[string]any) string {
	if name, _ := in["tool_name"].(string); name != "" {
		return toolSubject(name, in["tool_input"])
	}
	for _, k := range []string{"prompt", "message", "reason", "source"} {
		if s, _ := in[k].(string); s != "" {
			return truncate(oneLine(s), maxSubjectLen)
		}
	}
	return ""
}

// eventData is the hook input without what is large or useless to a
// reader of events: the tool's whole output and the transcript's path.
// Long strings are cut.
func eventData(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		switch k {
		case "tool_response", "transcript_path":
			continue
		}
		out[k] = cut(v)
	}
	if b, err := json.Marshal(out); err == nil && len(b) > 48<<10 {
		out["tool_input"] = "(too large to record)"
	}
	return out
}

func cut(v any) any {
	switch x := v.(type) {
	case string:
		if len(x) > maxFieldBytes {
			return truncateBytes(x, maxFieldBytes) + "…"
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cut(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cut(e)
		}
		return s
	}
	return v
}

// toolSubject names a tool call the way Claude Code's permission rules
// do, "Bash(git push)", "Write(/workspace/x.go)": short and stable, since
// an allow-always decision matches later calls on it.
func toolSubject(name string, input any) string {
	m, _ := input.(map[string]any)
	var arg string
	for _, k := range []string{"command", "file_path", "notebook_path", "url", "query", "pattern"} {
		if s, _ := m[k].(string); s != "" {
			arg = s
			break
		}
	}
	if arg == "" && len(m) > 0 {
		b, _ := json.Marshal(m)
		arg = string(b)
	}
	if arg == "" {
		return name
	}
	return name + "(" + truncate(oneLine(arg), maxSubjectLen) + ")"
}

// detail is the tool's whole input, for the human deciding.
func detail(input any) string {
	if input == nil {
		return ""
	}
	b, err := json.Marshal(input)
	if err != nil {
		return ""
	}
	if len(b) > maxDetailBytes {
		return truncateBytes(string(b), maxDetailBytes-len("…")) + "…"
	}
	return string(b)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func truncate(s string, runes int) string {
	if utf8.RuneCountInString(s) <= runes {
		return s
	}
	r := []rune(s)
	return string(r[:runes-1]) + "…"
}

// truncateBytes cuts s to at most n bytes without splitting a character.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
