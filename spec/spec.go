// Package spec is what the user wrote: bottle.yaml (optional) plus flags,
// validated strictly, with defaults filled in from the agent provider.
package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// DefaultFile is the spec file looked for in the working directory.
const DefaultFile = "bottle.yaml"

// Backend values.
const (
	BackendAuto   = "auto"
	BackendSmolvm = "smolvm"
	BackendDocker = "docker"
)

// Network modes of the smolvm backend (DESIGN.md, "Network modes").
const (
	NetworkAuto     = "auto"
	NetworkBridge   = "bridge"
	NetworkLoopback = "loopback"
)

// Approval kinds a spec can send to a human.
const (
	ApproveEgress = "egress"
	ApprovePush   = "push"
	ApproveTool   = "tool"
)

// Spec is a validated bottle description. Field names follow bottle.yaml.
type Spec struct {
	Name        string    `yaml:"name,omitempty" json:"name,omitempty"`
	Backend     string    `yaml:"backend,omitempty" json:"backend,omitempty"`
	NetworkMode string    `yaml:"network_mode,omitempty" json:"network_mode,omitempty"`
	Registry    string    `yaml:"registry,omitempty" json:"registry,omitempty"`
	Agent       Agent     `yaml:"agent,omitempty" json:"agent"`
	Egress      Egress    `yaml:"egress,omitempty" json:"egress"`
	Git         Git       `yaml:"git,omitempty" json:"git"`
	Supervise   Supervise `yaml:"supervise,omitempty" json:"supervise"`
	Resources   Resources `yaml:"resources,omitempty" json:"resources"`
	// Ports the agent listens on, published on the host's loopback.
	Ports []Port `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// Agent says which agent runs and from which image.
type Agent struct {
	Provider   string            `yaml:"provider,omitempty" json:"provider,omitempty"`
	Dockerfile string            `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	Context    string            `yaml:"context,omitempty" json:"context,omitempty"`
	Target     string            `yaml:"target,omitempty" json:"target,omitempty"`
	BuildArgs  map[string]string `yaml:"build_args,omitempty" json:"build_args,omitempty"`
	Image      string            `yaml:"image,omitempty" json:"image,omitempty"`
	Command    []string          `yaml:"command,omitempty" json:"command,omitempty"`
	Prompt     string            `yaml:"prompt,omitempty" json:"prompt,omitempty"`
	PromptFile string            `yaml:"prompt_file,omitempty" json:"prompt_file,omitempty"`
	// Env is plain, non-secret environment for the agent. Secrets go
	// through egress.secrets, which keeps them out of the bottle.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// UserConfig says which of the user's own agent settings the bottle
	// carries into the agent's home; see UserConfig.
	UserConfig UserConfig `yaml:"user_config,omitempty" json:"user_config,omitzero"`
}

// Egress lists where the agent may connect, through the bundle's proxy.
type Egress struct {
	Allow   []Rule   `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny    []Rule   `yaml:"deny,omitempty" json:"deny,omitempty"`
	Secrets []Secret `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	// ExtraCA is a PEM file on the host whose CAs the proxy trusts, besides
	// the host's roots, for the upstreams it intercepts (a corporate
	// intercepting proxy's CA, for example). Relative to the spec file.
	ExtraCA string `yaml:"extra_ca,omitempty" json:"extra_ca,omitempty"`
}

// Rule matches destinations: an exact host or "*.suffix" (subdomains only),
// on Ports (default 443 and 80).
type Rule struct {
	Host string `yaml:"host" json:"host"`
	// Ports defaults to 443 and 80.
	Ports []int `yaml:"ports,omitempty" json:"ports,omitempty"`
	// Private opts this host in to private and CGNAT addresses, which the
	// proxy refuses otherwise. It never opens loopback or the cloud metadata
	// addresses (the proxy's loopback and metadata options, which the spec
	// does not carry yet).
	Private bool `yaml:"private,omitempty" json:"private,omitempty"`
	// Methods and Paths make the proxy intercept TLS for the host and check
	// each request.
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	Paths   []string `yaml:"paths,omitempty" json:"paths,omitempty"`
	// WebSocket lets WebSocket upgrades through to a host the proxy
	// intercepts (secrets, methods or paths); inside a WebSocket nothing is
	// checked or redacted. Other hosts take WebSockets without it.
	WebSocket bool `yaml:"websocket,omitempty" json:"websocket,omitempty"`
}

// Secret is a credential the proxy adds on the way out, for Host only. The
// value comes from the host (an environment variable or a file) when the
// bottle starts; the bottle itself sees at most Placeholder.
type Secret struct {
	Host   string `yaml:"host" json:"host"`
	Header string `yaml:"header" json:"header"`
	// Format wraps the value, e.g. "Bearer {value}". Default "{value}".
	Format      string `yaml:"format,omitempty" json:"format,omitempty"`
	FromEnv     string `yaml:"from_env,omitempty" json:"from_env,omitempty"`
	FromFile    string `yaml:"from_file,omitempty" json:"from_file,omitempty"`
	Placeholder string `yaml:"placeholder,omitempty" json:"placeholder,omitempty"`
	// Optional secrets are skipped when their source is unset on the host.
	Optional bool `yaml:"optional,omitempty" json:"optional,omitempty"`
	// Value exists only to refuse literal secrets with a clear message.
	Value *string `yaml:"value,omitempty" json:"-"`
}

// Git sets what the gate lets the agent push.
type Git struct {
	// Push lists ref patterns the agent may update; "{name}" stands for the
	// bottle's name. Default: refs/heads/bottle/{name}/*.
	Push        []string `yaml:"push,omitempty" json:"push,omitempty"`
	AllowForce  bool     `yaml:"allow_force,omitempty" json:"allow_force,omitempty"`
	AllowDelete bool     `yaml:"allow_delete,omitempty" json:"allow_delete,omitempty"`
	AllowTags   bool     `yaml:"allow_tags,omitempty" json:"allow_tags,omitempty"`
	// ProtectedPaths adds to (or removes from) the default protected
	// paths; see ProtectedPaths.
	ProtectedPaths ProtectedPaths `yaml:"protected_paths,omitempty" json:"protected_paths,omitzero"`
}

// Supervise sets which actions wait for a human, and for how long.
type Supervise struct {
	Approvals []string `yaml:"approvals,omitempty" json:"approvals,omitempty"`
	// Timeout after which a pending approval is denied; 0 denies at once
	// (unattended runs).
	Timeout *Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Tools are the agent tools (provider-specific names or patterns) a
	// PreToolUse hook sends for approval when "tool" approvals are on.
	Tools []string `yaml:"tools,omitempty" json:"tools,omitempty"`
}

// Resources bound the bottle.
type Resources struct {
	CPUs   int    `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Memory *Bytes `yaml:"memory,omitempty" json:"memory,omitempty"`
}

// Duration is a time.Duration written as "90s" or "5m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	s := scalar(n)
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return located(n, fmt.Sprintf("%q is not a duration: write e.g. 90s, 5m or 1h (0 denies at once)", s))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Bytes is a size written as "512m", "8g" or a number of bytes.
type Bytes int64

// UnmarshalYAML parses a docker-style size (as `docker run --memory`).
func (b *Bytes) UnmarshalYAML(n ast.Node) error {
	s := scalar(n)
	v, err := units.RAMInBytes(s)
	if err != nil || v <= 0 {
		return located(n, fmt.Sprintf("%q is not a size: write e.g. 512m or 8g", s))
	}
	*b = Bytes(v)
	return nil
}

func scalar(n ast.Node) string {
	if sn, ok := n.(ast.ScalarNode); ok {
		return fmt.Sprint(sn.GetValue())
	}
	return strings.TrimSpace(n.String())
}

// located makes an error that carries the node's position, so Parse can
// report file:line:col for values checked while decoding.
func located(n ast.Node, msg string) error {
	return &yaml.SyntaxError{Message: msg, Token: n.GetToken()}
}

// MarshalYAML writes the size back in the same notation.
func (b Bytes) MarshalYAML() (any, error) { return units.BytesSize(float64(b)), nil }

// MarshalJSON writes the size as a number of bytes.
func (b Bytes) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprint(int64(b))), nil }

// UnmarshalJSON reads the duration text MarshalJSON writes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON reads a number of bytes.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var v int64
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("size must be a number of bytes: %w", err)
	}
	*b = Bytes(v)
	return nil
}
