package provider

import (
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Placeholders of the built-in secrets. They keep the vendors' key prefixes
// because the agents look at them (Claude Code treats a token starting
// with sk-ant-oat as an OAuth token); the rest says plainly what they are.
// The proxy replaces the placeholder inside the header the agent sends, so
// these secrets carry no Format: "Bearer <placeholder>" becomes
// "Bearer <token>".
const (
	AnthropicAPIKeyPlaceholder = "sk-ant-api03-bottle-placeholder-the-proxy-adds-the-key" //nolint:gosec // G101: a placeholder, as it says
	ClaudeOAuthPlaceholder     = "sk-ant-oat01-bottle-placeholder-the-proxy-adds-the-token"
	OpenAIAPIKeyPlaceholder    = "sk-bottle-placeholder-the-proxy-adds-the-key"
)

// Hosts the built-in providers need.
const (
	// AnthropicAPIHost serves Claude Code's every model call, with either
	// credential (API key or subscription OAuth token). Nothing else is
	// needed: CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC turns off the
	// auto-updater, error reporting and telemetry, and the managed
	// settings skip WebFetch's domain preflight (to claude.ai).
	AnthropicAPIHost = "api.anthropic.com"
	// OpenAIAPIHost serves Codex's model calls with an API key; its update
	// check is turned off on the command line.
	OpenAIAPIHost = "api.openai.com"
)

func claude() Provider {
	return Provider{
		Name:       spec.ProviderClaude,
		PromptMode: PromptAppendSystemPromptFile,
		Defaults: spec.Defaults{
			// The bottle is the permission boundary (README says so): the
			// agent cannot reach what the bundle does not allow, and tool
			// calls the user wants to see first go through the supervisor.
			Command: []string{"claude", "--dangerously-skip-permissions"},
			Allow:   []spec.Rule{{Host: AnthropicAPIHost, Ports: []int{443}}},
			Secrets: []spec.Secret{
				{Host: AnthropicAPIHost, Header: "x-api-key", FromEnv: "ANTHROPIC_API_KEY",
					Placeholder: AnthropicAPIKeyPlaceholder, Optional: true},
				{Host: AnthropicAPIHost, Header: "Authorization", FromEnv: "CLAUDE_CODE_OAUTH_TOKEN",
					Placeholder: ClaudeOAuthPlaceholder, Optional: true},
			},
			Env: map[string]string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
		},
		OneOf: []string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"},
		image: image{
			agent: "Claude Code", tmpl: "claude",
			version: ClaudeCodeVersion, sha512Amd64: claudeCodeSHA512Amd64, sha512Arm64: claudeCodeSHA512Arm64,
			// The binary is root's: it could not update itself anyway.
			env: []string{"DISABLE_AUTOUPDATER=1"},
			cmd: []string{"claude"},
		},
	}
}

func codex() Provider {
	return Provider{
		Name:       spec.ProviderCodex,
		PromptMode: PromptCodexAgentsFile,
		Defaults: spec.Defaults{
			// Codex's own sandbox cannot work in a hardened container and
			// is redundant in a bottle; its update check would reach a host
			// the bottle does not allow.
			Command: []string{"codex", "--dangerously-bypass-approvals-and-sandbox", "-c", "check_for_update_on_startup=false"},
			// Codex prefers a WebSocket for its model calls.
			Allow: []spec.Rule{{Host: OpenAIAPIHost, Ports: []int{443}, WebSocket: true}},
			Secrets: []spec.Secret{{Host: OpenAIAPIHost, Header: "Authorization",
				FromEnv: "OPENAI_API_KEY", Placeholder: OpenAIAPIKeyPlaceholder}},
			// Codex reads extra roots from here (the bundle file has the
			// system roots and the bottle CA).
			Env: map[string]string{"CODEX_CA_CERTIFICATE": plan.GuestCABundle},
		},
		OneOf: []string{"OPENAI_API_KEY"},
		image: image{
			agent: "Codex", tmpl: "codex",
			version: CodexVersion, sha512Amd64: codexSHA512Amd64, sha512Arm64: codexSHA512Arm64,
			cmd: []string{"codex"},
		},
	}
}

// shell runs any command in any image: no hosts, no secrets, no in-bottle
// configuration. Its built-in image is the common base (git, CA tools, the
// agent user) for a first try without a Dockerfile.
func shell() Provider {
	return Provider{
		Name:       spec.ProviderShell,
		PromptMode: PromptNone,
		Defaults:   spec.Defaults{Command: []string{"sh"}},
		image:      image{tmpl: "shell", cmd: []string{"bash"}},
	}
}
