// Package provider defines how each agent is run: its built-in image, its
// command and prompt mode, the hosts it needs, the secrets the proxy adds
// for it, the placeholders the agent sees instead, and the configuration it
// gets inside the bottle (for Claude Code, settings whose hooks report to
// the supervisor and ask it before chosen tools run).
package provider

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Prompt modes (see package guest, which the bottle side shares).
const (
	PromptAppendSystemPromptFile = guest.PromptAppendSystemPromptFile
	PromptCodexAgentsFile        = guest.PromptCodexAgentsFile
	PromptNone                   = guest.PromptNone
)

// BuiltinPrefix marks a plan's Dockerfile that is a provider's built-in
// one ("builtin:claude"), rendered by Dockerfile rather than read from disk.
const BuiltinPrefix = "builtin:"

// Provider is one kind of agent.
type Provider struct {
	Name       string
	PromptMode string
	Defaults   spec.Defaults
	// OneOf names host environment variables of which at least one must be
	// set for the agent to authenticate (empty: none needed).
	OneOf []string
	image image
}

// Get returns the provider called name ("" means the default, claude).
func Get(name string) (Provider, error) {
	if name == "" {
		name = spec.ProviderNames()[0]
	}
	switch name {
	case spec.ProviderClaude:
		return claude(), nil
	case spec.ProviderCodex:
		return codex(), nil
	case spec.ProviderShell:
		return shell(), nil
	}
	return Provider{}, fmt.Errorf("agent provider %q is unknown: use one of %s", name, strings.Join(spec.ProviderNames(), ", "))
}

// Plan returns what a plan records of the provider.
func (p Provider) Plan() plan.Provider {
	return plan.Provider{Name: p.Name, PromptMode: p.PromptMode, Dockerfile: BuiltinPrefix + p.Name}
}

// Bootstrap is the command the backend runs in the bottle (as the
// container's command, or through `smolvm machine exec`): the helper's init
// subcommand, which clones the workspace from the git gate, checks out the
// bottle's branch, prepares the agent's home and execs the agent's command
// with the prompt applied.
func Bootstrap(a plan.AgentProvision) []string {
	mode := a.PromptMode
	if mode == "" {
		mode = PromptNone
	}
	argv := []string{guest.HelperPath, guest.SubcommandInit,
		"--provider", a.Provider, "--prompt-mode", mode, "--workspace", plan.GuestWorkspace, "--"}
	return append(argv, a.Command...)
}

// SecretPresent reports whether a secret's source is available on this
// host: its environment variable set and not empty, or its file readable.
type SecretPresent func(spec.Secret) bool

// HostSecretPresent is SecretPresent on this host: the variable set and not
// empty, or the file readable. It reads values only to test them.
func HostSecretPresent(s spec.Secret) bool {
	switch {
	case s.FromEnv != "":
		v, ok := os.LookupEnv(s.FromEnv)
		return ok && strings.TrimSpace(v) != ""
	case s.FromFile != "":
		f, err := os.Open(s.FromFile)
		if err != nil {
			return false
		}
		f.Close() //nolint:errcheck // opened only to test that it can be read
		return true
	}
	return false
}

// PlaceholderEnv is the environment the agent gets for the secrets present
// on the host: NAME=placeholder for each secret read from the host variable
// NAME and carrying a placeholder, so that the agent starts as if it had
// the credential while only the proxy holds it. Secrets absent on the host
// get no variable: an agent that sees a key tries to use it.
func PlaceholderEnv(secrets []spec.Secret, present SecretPresent) map[string]string {
	env := map[string]string{}
	for _, s := range secrets {
		if s.Placeholder != "" && s.FromEnv != "" && present(s) {
			env[s.FromEnv] = s.Placeholder
		}
	}
	return env
}

// CheckCredentials says, before anything starts, when the agent would have
// no credential at all: none of OneOf is present on the host.
func (p Provider) CheckCredentials(secrets []spec.Secret, present SecretPresent) error {
	if len(p.OneOf) == 0 {
		return nil
	}
	for _, s := range secrets {
		if slices.Contains(p.OneOf, s.FromEnv) && present(s) {
			return nil
		}
	}
	return fmt.Errorf("%s needs a credential and none is set on this host: export %s (the bottle's proxy adds it on the way out; the agent only sees a placeholder)",
		p.Name, strings.Join(p.OneOf, " or "))
}
