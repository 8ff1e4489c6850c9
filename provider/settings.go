package provider

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

// File is an in-guest file a provider adds to the bottle layer, owned by
// root.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
}

// ClaudeManagedSettings is where Claude Code reads its managed settings on
// Linux: the highest-precedence scope, which the agent (not root) cannot
// change and whose hooks user or project settings cannot disable.
const ClaudeManagedSettings = "/etc/claude-code/managed-settings.json"

// Event hooks report to the supervisor; they never hold the agent up for
// long and never stop it (the hook always exits 0).
const eventHookTimeout = 10 * time.Second

// claudeEvents are the Claude Code hook events reported to the supervisor:
// the session's life, each prompt, each tool call's outcome, and what the
// agent wants a human to see.
var claudeEvents = []string{
	"SessionStart", "UserPromptSubmit", "PostToolUse", "PostToolUseFailure",
	"Notification", "Stop", "SubagentStop", "SessionEnd",
}

// BottleFiles are the files the provider adds to the bottle layer for
// spec s (besides the helper binary at guest.HelperPath, which every
// provider needs). For Claude Code: the managed settings with the hooks.
func (p Provider) BottleFiles(s spec.Spec) ([]File, error) {
	if p.Name != spec.ProviderClaude {
		return nil, nil
	}
	b, err := ClaudeSettings(s.Supervise)
	if err != nil {
		return nil, err
	}
	return []File{{Path: ClaudeManagedSettings, Content: b, Mode: 0o644}}, nil
}

type claudeHook struct {
	Type      string `json:"type"`
	Command   string `json:"command"`
	Timeout   int    `json:"timeout"`
	If        string `json:"if,omitempty"`
	OnFailure string `json:"onFailure,omitempty"`
}

type claudeMatcher struct {
	Matcher string       `json:"matcher,omitempty"`
	Hooks   []claudeHook `json:"hooks"`
}

// toolPattern is a Claude Code hook matcher (a tool name or a regular
// expression over tool names), optionally followed by a permission rule's
// argument in parentheses: "Bash", "Edit|Write", "mcp__.*",
// "Bash(git push *)".
var toolPattern = regexp.MustCompile(`^([A-Za-z0-9_.*|^$+?\[\]-]+)(\((.+)\))?$`)

// ClaudeSettings renders Claude Code's managed settings for a bottle:
// every event in claudeEvents is posted to the supervisor, and when sup
// asks for "tool" approvals, a PreToolUse hook per entry of sup.Tools (all
// tools when the list is empty) asks the supervisor and blocks until it
// answers. That hook fails closed: if it cannot run, times out or crashes,
// the tool call is blocked (onFailure "block", Claude Code 2.1.295+).
func ClaudeSettings(sup spec.Supervise) ([]byte, error) {
	event := claudeHook{Type: "command", Command: guest.HelperPath + " " + guest.SubcommandHook, Timeout: int(eventHookTimeout.Seconds())}
	hooks := map[string][]claudeMatcher{}
	for _, e := range claudeEvents {
		m := claudeMatcher{Hooks: []claudeHook{event}}
		if strings.HasPrefix(e, "PostToolUse") {
			m.Matcher = "*"
		}
		hooks[e] = []claudeMatcher{m}
	}
	if slices.Contains(sup.Approvals, spec.ApproveTool) {
		wait := spec.DefaultApprovalTimeout
		if sup.Timeout != nil {
			wait = time.Duration(*sup.Timeout)
		}
		// The supervisor denies at its timeout; the hook gives up a little
		// later (deny), and Claude Code's own limit comes last.
		hookWait := wait + 30*time.Second
		ask := claudeHook{Type: "command", OnFailure: "block",
			Command: fmt.Sprintf("%s %s --approve --wait %s", guest.HelperPath, guest.SubcommandHook, hookWait),
			Timeout: int((hookWait + 30*time.Second).Seconds())}
		tools := sup.Tools
		if len(tools) == 0 {
			tools = []string{"*"}
		}
		for _, tool := range tools {
			m := toolPattern.FindStringSubmatch(tool)
			if m == nil {
				return nil, fmt.Errorf("supervise.tools: %q is not a Claude Code tool pattern: write a tool name (Bash), a pattern over names (Edit|Write, mcp__.*) or a rule (Bash(git push *))", tool)
			}
			h := ask
			if m[2] != "" {
				h.If = tool
			}
			hooks["PreToolUse"] = append(hooks["PreToolUse"], claudeMatcher{Matcher: m[1], Hooks: []claudeHook{h}})
		}
	}
	settings := map[string]any{
		"hooks": hooks,
		// The bottle is the boundary: no dialog about bypassing permissions.
		"skipDangerousModePermissionPrompt": true,
		// WebFetch asks claude.ai about each domain first; the proxy's
		// allowlist decides here.
		"skipWebFetchPreflight": true,
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding Claude Code settings: %w", err)
	}
	return append(b, '\n'), nil
}
