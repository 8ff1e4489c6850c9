package agentconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/pelletier/go-toml/v2"
)

// leftKey is a part of a carried file that was left out: Key is its path
// in the file (env.ANTHROPIC_API_KEY).
type leftKey struct {
	Key, Reason string
}

// Reasons shared by the filters.
const (
	reasonCredential = "a credential: the bottle never carries one (give it to the proxy with egress.secrets)" //nolint:gosec // G101: a reason shown to the user, not a credential
	reasonEnvBottle  = "the bottle sets this variable itself"
)

// Claude Code settings carried from the user's settings.json; the rest
// (credential helpers, plugins, login and telemetry settings...) stays on
// the host.
var claudeSettingsKeys = []string{
	"permissions", "hooks", "env", "model", "outputStyle", "statusLine",
	"alwaysThinkingEnabled", "includeCoAuthoredBy",
}

// claudeMergedKeys are the settings Claude Code merges across scopes
// (managed, user, project): the bottle's managed values stay in force
// whatever the user's say, so the user's are carried even when the bottle
// sets the same key.
var claudeMergedKeys = []string{"permissions", "hooks", "env"}

// claudeHelperKeys run a command that prints a credential.
var claudeHelperKeys = []string{"apiKeyHelper", "awsCredentialExport", "awsAuthRefresh", "otelHeadersHelper"}

// reservedEnv are variables the bottle sets for the agent (proxy, CA
// trust, homes, git): a user's value would break the way out or the
// bottle's own settings. Compared case-insensitively.
var reservedEnv = []string{
	"HOME", "PATH", "USER", "SHELL", "CODEX_HOME", "CLAUDE_CONFIG_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "REQUESTS_CA_BUNDLE",
	"CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "AWS_CA_BUNDLE", "DENO_CERT", "CARGO_HTTP_CAINFO",
	"CODEX_CA_CERTIFICATE", "DISABLE_AUTOUPDATER",
	"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
}

// reservedEnvPrefixes: the bottle's own variables and git's configuration
// through the environment.
var reservedEnvPrefixes = []string{"BOTTLE_", "GIT_CONFIG_"}

func (o *Options) envReserved(name string) bool {
	n := strings.ToUpper(name)
	if slices.Contains(reservedEnv, n) {
		return true
	}
	for _, p := range reservedEnvPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return slices.ContainsFunc(o.ReservedEnv, func(r string) bool { return strings.EqualFold(r, name) })
}

func decodeJSON(src []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("it holds null, not an object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("it holds more than one JSON value")
	}
	return m, nil
}

func encodeJSON(m map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Hook commands keep their & < > as written.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// claudeSettings filters the user's Claude Code settings.json: only
// claudeSettingsKeys, never a credential or a variable the bottle sets,
// and nothing that would turn off the bottle's own settings (bottle, the
// managed settings the bottle writes, whose values win).
func (o *Options) claudeSettings(src []byte, bottle map[string]any) ([]byte, []leftKey, error) {
	m, err := decodeJSON(src)
	if err != nil {
		return nil, nil, err
	}
	var left []leftKey
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch {
		case slices.Contains(claudeHelperKeys, k):
			left = append(left, leftKey{k, "a credential helper: the proxy adds credentials on the way out"})
		case !slices.Contains(claudeSettingsKeys, k):
			left = append(left, leftKey{k, "not among the settings a bottle carries (" + strings.Join(claudeSettingsKeys, ", ") + ")"})
		case bottle[k] != nil && !slices.Contains(claudeMergedKeys, k):
			left = append(left, leftKey{k, "the bottle's own settings set it, and they win"})
		default:
			continue
		}
		delete(m, k)
	}
	if perms, ok := m["permissions"].(map[string]any); ok {
		if _, ok := perms["disableBypassPermissionsMode"]; ok {
			delete(perms, "disableBypassPermissionsMode")
			left = append(left, leftKey{"permissions.disableBypassPermissionsMode",
				"the bottle runs Claude Code without permission prompts: the bottle is the boundary"})
		}
	}
	if env, ok := m["env"].(map[string]any); ok {
		bottleEnv, _ := bottle["env"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if _, set := bottleEnv[k]; set || o.envReserved(k) {
				delete(env, k)
				left = append(left, leftKey{"env." + k, reasonEnvBottle})
			}
		}
	}
	left = append(left, stripCredentials(m, "")...)
	out, err := encodeJSON(m)
	return out, left, err
}

// claudeState keeps, of the user's ~/.claude.json (Claude Code's state:
// account, OAuth details, per-project history), only the user-scoped MCP
// servers, and those filtered by mcp.
func (o *Options) claudeState(src []byte, file string) ([]byte, []leftKey, []MCPServer, error) {
	m, err := decodeJSON(src)
	if err != nil {
		return nil, nil, nil, err
	}
	left := []leftKey{{"(everything but mcpServers)", "account, login and per-project state stay on the host"}}
	if projects, ok := m["projects"].(map[string]any); ok {
		for _, p := range slices.Sorted(maps.Keys(projects)) {
			if pm, ok := projects[p].(map[string]any); ok {
				if s, ok := pm["mcpServers"].(map[string]any); ok && len(s) > 0 {
					left = append(left, leftKey{"projects." + p + ".mcpServers",
						"MCP servers of a folder on this host: add them to your user scope (claude mcp add -s user) or the repository's .mcp.json"})
				}
			}
		}
	}
	servers, ok := m["mcpServers"].(map[string]any)
	if !ok || len(servers) == 0 {
		return nil, left, nil, nil
	}
	out := map[string]any{"mcpServers": servers}
	left = append(left, stripCredentials(out, "")...)
	mcp, skipped := o.mcp(servers, file, "mcpServers")
	left = append(left, skipped...)
	if len(servers) == 0 {
		return nil, left, mcp, nil
	}
	b, err := encodeJSON(out)
	return b, left, mcp, err
}

// Codex settings that would undo how the bottle logs Codex in, or that
// describe folders of this host.
var codexDropped = map[string]string{ //nolint:gosec // G101: a reason shown to the user, not a credential
	"forced_login_method":         "the bottle logs Codex in with its API key placeholder",
	"forced_chatgpt_workspace_id": "the bottle logs Codex in with its API key placeholder",
	"cli_auth_credentials_store":  "the bottle logs Codex in with its API key placeholder",
	"mcp_oauth_credentials_store": "OAuth logins of MCP servers stay on the host",
	"chatgpt_base_url":            "the bottle logs Codex in with its API key placeholder",
	"projects":                    "trust settings of folders on this host",
}

// codexConfig filters the user's Codex config.toml: no credential, none of
// codexDropped, and only the MCP servers that can run in the bottle.
func (o *Options) codexConfig(src []byte, file string) ([]byte, []leftKey, []MCPServer, error) {
	var m map[string]any
	if err := toml.Unmarshal(src, &m); err != nil {
		return nil, nil, nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	var left []leftKey
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if reason, ok := codexDropped[k]; ok {
			delete(m, k)
			left = append(left, leftKey{k, reason})
		}
	}
	left = append(left, stripCredentials(m, "")...)
	var mcp []MCPServer
	if servers, ok := m["mcp_servers"].(map[string]any); ok {
		var skipped []leftKey
		mcp, skipped = o.mcp(servers, file, "mcp_servers")
		left = append(left, skipped...)
	}
	out, err := toml.Marshal(m)
	return out, left, mcp, err
}

// MCPServer is an MCP server of the user's configuration: a remote one
// (Host, reached through the proxy, so the egress rules must allow it) or a
// local one (Command, run in the bottle, so the agent image must have it).
type MCPServer struct {
	Name string
	// File is where it is configured (~/.claude.json).
	File string
	// Transport is stdio, or the remote kind (http, sse...).
	Transport string
	Host      string `json:",omitempty"`
	Port      int    `json:",omitempty"`
	Command   string `json:",omitempty"`
	Carried   bool
	// Note says why a server was skipped, or what it needs.
	Note string `json:",omitempty"`
}

// mcp sorts the servers of one file, removing from servers those that
// cannot run in the bottle.
func (o *Options) mcp(servers map[string]any, file, key string) ([]MCPServer, []leftKey) {
	var out []MCPServer
	var left []leftKey
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		s := MCPServer{Name: name, File: file}
		cfg, _ := servers[name].(map[string]any)
		rawURL, _ := cfg["url"].(string)
		command, _ := cfg["command"].(string)
		switch {
		case rawURL != "":
			s.Transport = "http"
			if t, ok := cfg["type"].(string); ok && t != "" {
				s.Transport = t
			}
			u, err := url.Parse(rawURL)
			if err != nil || u.Hostname() == "" {
				s.Note = "its url is not a URL with a host"
				break
			}
			s.Host = u.Hostname()
			s.Port = defaultPort(u)
			s.Carried = true
			s.Note = "reached through the proxy: the egress rules must allow " + hostPort(s.Host, s.Port)
		case command != "":
			s.Transport = "stdio"
			s.Command = command
			switch {
			case o.CommandExists == nil:
				s.Carried = true
				s.Note = "runs " + command + " in the bottle (not checked against the agent image)"
			case o.CommandExists(command):
				s.Carried = true
				s.Note = "runs " + command + " in the bottle"
			default:
				s.Note = command + " is not in the agent image: install it there (agent.dockerfile) to use this server"
			}
		default:
			s.Note = "it has neither a command nor a url"
		}
		if !s.Carried {
			delete(servers, name)
			left = append(left, leftKey{key + "." + name, "MCP server skipped: " + s.Note})
		}
		out = append(out, s)
	}
	return out, left
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

func defaultPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p < 65536 {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		return 80
	}
	return 443
}

// stripCredentials removes, anywhere in a configuration tree, the string
// values under credential-like names (an environment variable, a header, a
// setting: GITHUB_TOKEN, Authorization, experimental_bearer_token). at is
// the tree's path (for the report).
func stripCredentials(m map[string]any, at string) []leftKey {
	var left []leftKey
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := k
		if at != "" {
			key = at + "." + k
		}
		if _, isString := m[k].(string); isString && credentialName(k) {
			left = append(left, leftKey{key, reasonCredential})
			delete(m, k)
			continue
		}
		left = append(left, stripIn(m[k], key)...)
	}
	return left
}

func stripIn(v any, at string) []leftKey {
	switch x := v.(type) {
	case map[string]any:
		return stripCredentials(x, at)
	case []any:
		var left []leftKey
		for i, e := range x {
			left = append(left, stripIn(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
		return left
	case []map[string]any:
		var left []leftKey
		for i, e := range x {
			left = append(left, stripCredentials(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
		return left
	}
	return nil
}

// credentialWords make a name a credential's, wherever they are in it.
var credentialWords = []string{"TOKEN", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL", "CREDENTIALS", "COOKIE", "AUTHORIZATION"}

// aboutWords end names that say something about a credential (its
// variable, file, limit) rather than hold one: bearer_token_env_var,
// MAX_OUTPUT_TOKENS is not one either (TOKENS is not in credentialWords).
var aboutWords = []string{"ENV", "VAR", "FILE", "PATH", "HELPER", "LIMIT", "LIMITS", "COUNT", "TYPE", "URL", "NAME", "STORE", "COMMAND", "CMD", "MODE"}

// credentialName reports whether a setting, variable or header named name
// holds a credential: ANTHROPIC_API_KEY, bearerToken, x-api-key,
// Authorization, experimental_bearer_token; not env_key (it names a
// variable), not model_auto_compact_token_limit.
func credentialName(name string) bool {
	w := words(name)
	if len(w) == 0 || slices.Contains(aboutWords, w[len(w)-1]) {
		return false
	}
	if w[len(w)-1] == "KEY" {
		return len(w) == 1 || w[len(w)-2] != "ENV"
	}
	return slices.ContainsFunc(w, func(x string) bool { return slices.Contains(credentialWords, x) })
}

// words splits a name written in snake, kebab or camel case into upper-case
// words: "apiKey" and "API_KEY" both give [API KEY].
func words(name string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToUpper(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) ||
			(unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1]))):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}
