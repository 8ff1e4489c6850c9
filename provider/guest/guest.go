// Package guest is what the plugin and the bottle agree on about starting an
// agent: where the helper binary lives, the prompt modes and how each one
// turns the bottle's prompt file into arguments or files, and the names the
// workspace bootstrap takes. It uses the standard library only, so that the
// bundle binary (whose init and hook subcommands run in the bottle) can
// import it without the plugin side.
package guest

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
)

// HelperPath is where the bottle layer puts the bundle binary in every agent
// image: its init subcommand is the workspace bootstrap and its hook
// subcommand the agent's hooks. It is off PATH on purpose: the agent has no
// reason to call it.
const HelperPath = "/usr/local/libexec/docker-bottle/bottle-bundle"

// Subcommands of the helper.
const (
	SubcommandInit = "init"
	SubcommandHook = "hook"
)

// Prompt modes: how an agent receives the bottle's prompt file. Every mode
// does nothing when the file is empty (or only white space).
const (
	// PromptAppendSystemPromptFile passes --append-system-prompt-file FILE
	// (Claude Code): the prompt is added to the agent's system prompt.
	PromptAppendSystemPromptFile = "append-system-prompt-file"
	// PromptCodexAgentsFile writes the prompt to $CODEX_HOME/AGENTS.md
	// (default ~/.codex/AGENTS.md), Codex's global instructions: the same
	// role as Claude Code's appended system prompt.
	PromptCodexAgentsFile = "codex-agents-md"
	// PromptNone ignores the prompt.
	PromptNone = "none"
)

// PromptModes lists the modes.
func PromptModes() []string {
	return []string{PromptAppendSystemPromptFile, PromptCodexAgentsFile, PromptNone}
}

// Launch is how to start the agent: its arguments and the files to write
// first (absolute path to content).
type Launch struct {
	Argv  []string
	Files map[string][]byte
}

// Apply returns how to start argv with the prompt (the content of the
// prompt file, which is at promptFile in the bottle) in mode. getenv reads
// the agent's environment (HOME, CODEX_HOME).
func Apply(mode string, argv []string, promptFile string, prompt []byte, getenv func(string) string) (Launch, error) {
	if len(argv) == 0 || argv[0] == "" {
		return Launch{}, errors.New("no agent command: give one after --")
	}
	l := Launch{Argv: append([]string(nil), argv...)}
	empty := len(bytes.TrimSpace(prompt)) == 0
	switch mode {
	case PromptNone, "":
	case PromptAppendSystemPromptFile:
		if !empty {
			l.Argv = append(l.Argv, "--append-system-prompt-file", promptFile)
		}
	case PromptCodexAgentsFile:
		if !empty {
			home := getenv("CODEX_HOME")
			if home == "" {
				h := getenv("HOME")
				if h == "" {
					return Launch{}, errors.New("neither CODEX_HOME nor HOME is set: cannot place the prompt in Codex's AGENTS.md")
				}
				home = path.Join(h, ".codex")
			}
			l.Files = map[string][]byte{path.Join(home, "AGENTS.md"): bytes.Clone(prompt)}
		}
	default:
		return Launch{}, fmt.Errorf("prompt mode %q is unknown: use one of %s", mode, strings.Join(PromptModes(), ", "))
	}
	return l, nil
}
