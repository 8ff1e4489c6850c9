// Package guest is what the plugin and the bottle agree on about starting an
// agent: where the helper binary lives, its subcommands and the environment
// they read, the prompt modes and how each one turns the bottle's prompt
// file into arguments or files, and the names the workspace bootstrap
// takes. It uses the standard library only, so that both sides can import
// it.
//
// The helper's subcommands are implemented in the packages below this one,
// for the bundle binary: bootstrap (init and exec), hook, session, machine
// (sleep and ready), and pty for their terminals (which the fake smolvm's
// `machine exec -t` uses too).
package guest

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
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
	// SubcommandExec runs a command of `docker bottle exec` with the
	// agent's network (the proxy's token added in its own process).
	SubcommandExec = "exec"
	// SubcommandSleep waits until it is stopped: the workload that keeps a
	// smolvm machine up while the agent runs through `machine exec`.
	SubcommandSleep = "sleep"
	// SubcommandReady prints ReadyMarker: proof that a machine booted and
	// ran a command.
	SubcommandReady = "ready"
	// SubcommandDial connects to HOST:PORT in its own network namespace
	// and copies stdin and stdout to and from it: the plugin execs it in a
	// bundle to reach the bundle's services through the engine API, as
	// `kubectl port-forward` reaches a pod's.
	SubcommandDial = "dial"
)

// DialReadyMarker is what the dial subcommand writes on stderr once it is
// connected, before any byte of the connection: the plugin's Dial returns
// then, or with the error the subcommand wrote instead.
const DialReadyMarker = "bottle-bundle dial: connected\n"

// The guest environment's variables the helper reads; the plan's guest env
// sets them (the token is never in the environment: its file is).
const (
	EnvGateURL      = "BOTTLE_GATE_URL"
	EnvBranch       = "BOTTLE_BRANCH"
	EnvPromptFile   = "BOTTLE_PROMPT_FILE"
	EnvBottleName   = "BOTTLE_NAME"
	EnvSuperviseURL = "BOTTLE_SUPERVISE_URL"
	EnvTokenFile    = "BOTTLE_TOKEN_FILE" //nolint:gosec // G101: the name of a variable that holds a path
	// EnvUserConfig is the snapshot of the user's own agent settings (a
	// tar of files relative to the agent's home), which the workspace
	// bootstrap copies into the home at the bottle's first start; absent
	// when nothing is carried.
	EnvUserConfig = "BOTTLE_USER_CONFIG"
)

// ExitCode is the error with which a subcommand of the helper ends it with
// that exit code and nothing more said: the subcommand has said why, or the
// code is the agent's own, which the plugin passes on.
type ExitCode int

func (c ExitCode) Error() string { return "exit code " + strconv.Itoa(int(c)) }

// ReadyMarker starts what the ready subcommand prints: the host's boot
// check (`docker bottle doctor`) looks for it in a test microVM's output.
const ReadyMarker = "bottle-bundle ready"

// Exec is the helper command that runs command next to the agent, with
// the agent's proxy settings, CA variables, git configuration and token.
func Exec(command []string) []string {
	return append([]string{HelperPath, SubcommandExec, "--"}, command...)
}

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

// SubcommandSession is the helper's agent session: `session start` runs the
// agent under a terminal of its own and keeps its output, `session attach`
// and `session logs` reach it from other execs (smolvm has no attach or
// logs of its own).
const SubcommandSession = "session"

// SessionDirName is where a session keeps its log, socket and exit code,
// under the agent user's home.
const SessionDirName = ".local/state/docker-bottle/session"

// SessionDir is the session directory for an environment: under HOME,
// which the agent user can write and which is on the machine's own
// persistent disk, so the log survives a stop and start as a container's
// log does; in /tmp when there is no home.
func SessionDir(getenv func(string) string, uid int) string {
	if h := getenv("HOME"); h != "" && h != "/" && path.IsAbs(h) {
		return path.Join(h, SessionDirName)
	}
	return fmt.Sprintf("/tmp/docker-bottle-session-%d", uid)
}

// SessionStart is the helper command that runs command as the agent's
// session, known by id.
func SessionStart(id string, command []string) []string {
	return append([]string{HelperPath, SubcommandSession, "start", "--id", id, "--"}, command...)
}

// SessionWait is the helper command that waits until the session id has
// started (or ended already).
func SessionWait(id string) []string {
	return []string{HelperPath, SubcommandSession, "wait", "--id", id}
}

// SessionAttach is the helper command that attaches to the session (id,
// or the current one when id is empty).
func SessionAttach(id string) []string {
	a := []string{HelperPath, SubcommandSession, "attach"}
	if id != "" {
		a = append(a, "--id", id)
	}
	return a
}

// SessionLogs is the helper command that prints the session's log: the
// last tail lines ("all" or empty: everything), following while it runs.
func SessionLogs(follow bool, tail string) []string {
	a := []string{HelperPath, SubcommandSession, "logs"}
	if follow {
		a = append(a, "-f")
	}
	if tail != "" {
		a = append(a, "--tail", tail)
	}
	return a
}

// SessionStatusCommand is the helper command that prints the session's
// state as JSON (SessionStatus).
func SessionStatusCommand() []string {
	return []string{HelperPath, SubcommandSession, "status"}
}

// SessionStatus is what `session status` prints.
type SessionStatus struct {
	// ID of the current or last session; empty when none ever ran.
	ID      string `json:"id,omitempty"`
	Running bool   `json:"running"`
	// ExitCode of the last session, when it ended.
	ExitCode *int `json:"exit_code,omitempty"`
}
