package provider

// Pinned inputs of the built-in images. Bumping one is a reviewed change:
// the digests come from the registries' own metadata (`npm view PKG@VERSION
// dist.integrity`, base64 decoded to hex; the Docker official images'
// repo-info for the base image) and are checked by the build itself.
const (
	// BaseImage is debian:bookworm-slim, by the digest of its multi-platform
	// index (the 2026-08-03 build), so that linux/amd64 and linux/arm64
	// engines both resolve it. Tests build on a local base instead, through
	// the BASE_IMAGE build argument.
	BaseImage = "debian:bookworm-slim@sha256:abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241"

	// NPMRegistry is where the agents' native packages are fetched from;
	// the NPM_REGISTRY build argument points the build at a mirror.
	NPMRegistry = "https://registry.npmjs.org"

	// ClaudeCodeVersion is @anthropic-ai/claude-code. Since 2.x it ships as
	// a native binary in per-platform packages, so the image needs no
	// Node.js; 2.1.295 or later is needed for the hooks' onFailure field.
	ClaudeCodeVersion = "2.1.332"
	// sha512 of @anthropic-ai/claude-code-linux-{x64,arm64}@ClaudeCodeVersion.
	claudeCodeSHA512Amd64 = "7f8256873c18bad2481d2702eff75838f5fab36f2db7b6400e1b0e8bccf0387ab97c53c4b94782861d8d31f8a74a0d06ad472463169e79b0b88740ea88accb73"
	claudeCodeSHA512Arm64 = "0651cd12d2b7f0a04f594df5178954492f6c1dc942c9f59b4e14f5084aefc711fcf977258d82d9950c1dc970644c3eb6af0d5381f135bb56beaae3164b435226"

	// CodexVersion is @openai/codex, whose per-platform builds are
	// published as versions of the same package (0.171.0-linux-x64).
	CodexVersion = "0.171.0"
	// sha512 of @openai/codex@CodexVersion-linux-{x64,arm64}.
	codexSHA512Amd64 = "97ae8d664420764d82de96dc7d42c3cf8db2114079f3531503a23e638dd6a78388a84cbbdc709d999d064e37801d8db272e1f8374d1df55b0baf04f58f1b214f"
	codexSHA512Arm64 = "f73d7bb786db509f540886f8f4ee0fa00fa48bee39ab7addf2767c3de1fab189e52a406577f5e9a3f392de1dd38bde78f9fa2c857e28ee4e53094f0def3cea40"
)

// AgentUID is the non-root user every built-in image runs as ("agent",
// home /home/agent), uid and gid alike.
const AgentUID = 1000
