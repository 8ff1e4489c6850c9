// Package provider defines how each agent is run: its built-in image, its
// command and prompt mode, the hosts it needs, the secrets the proxy adds
// for it. Issue 9 completes the built-in Dockerfiles and in-bottle settings.
package provider

import (
	"fmt"
	"strings"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Prompt modes: how an agent receives the bottle's prompt file.
const (
	// PromptAppendSystemPromptFile passes --append-system-prompt-file FILE
	// when the file is non-empty (Claude Code).
	PromptAppendSystemPromptFile = "append-system-prompt-file"
	// PromptArgument passes the prompt text as the last argument.
	PromptArgument = "argument"
	// PromptNone ignores the prompt.
	PromptNone = "none"
)

// Provider is one kind of agent.
type Provider struct {
	Name       string
	PromptMode string
	Defaults   spec.Defaults
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
		return Provider{Name: spec.ProviderShell, PromptMode: PromptNone, Defaults: spec.Defaults{Command: []string{"sh"}}}, nil
	}
	return Provider{}, fmt.Errorf("agent provider %q is unknown: use one of %s", name, strings.Join(spec.ProviderNames(), ", "))
}

// Plan returns what a plan records of the provider.
func (p Provider) Plan() plan.Provider {
	return plan.Provider{Name: p.Name, PromptMode: p.PromptMode, Dockerfile: "builtin:" + p.Name}
}

// Placeholder is what the bottle sees instead of a secret; the proxy swaps
// it for the real value on the way out.
func Placeholder(envName string) string { return "bottle-placeholder-" + strings.ToLower(envName) }

func claude() Provider {
	return Provider{
		Name:       spec.ProviderClaude,
		PromptMode: PromptAppendSystemPromptFile,
		Defaults: spec.Defaults{
			// The bottle is the permission boundary (README says so).
			Command: []string{"claude", "--dangerously-skip-permissions"},
			Allow:   []spec.Rule{{Host: "api.anthropic.com", Ports: []int{443}}},
			Secrets: []spec.Secret{
				{Host: "api.anthropic.com", Header: "x-api-key", FromEnv: "ANTHROPIC_API_KEY",
					Placeholder: Placeholder("ANTHROPIC_API_KEY"), Optional: true},
				{Host: "api.anthropic.com", Header: "Authorization", Format: "Bearer {value}", FromEnv: "CLAUDE_CODE_OAUTH_TOKEN",
					Placeholder: Placeholder("CLAUDE_CODE_OAUTH_TOKEN"), Optional: true},
			},
			Env: map[string]string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
		},
	}
}

func codex() Provider {
	return Provider{
		Name:       spec.ProviderCodex,
		PromptMode: PromptArgument,
		Defaults: spec.Defaults{
			Command: []string{"codex"},
			Allow:   []spec.Rule{{Host: "api.openai.com", Ports: []int{443}}},
			Secrets: []spec.Secret{{Host: "api.openai.com", Header: "Authorization", Format: "Bearer {value}",
				FromEnv: "OPENAI_API_KEY", Placeholder: Placeholder("OPENAI_API_KEY")}},
		},
	}
}
