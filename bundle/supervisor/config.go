package supervisor

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/conf"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// Config is the supervisor's whole configuration. The plugin writes it as
// JSON into the bottle's stage dir; the bundle reads it with LoadConfig.
// Tokens are not in it: it names the files (0600) that hold them.
type Config struct {
	// Listen is the TCP address to serve on; empty means DefaultListen.
	Listen string `json:"listen,omitempty"`
	// Bottle names the bottle in audit lines, events and health.
	Bottle string `json:"bottle"`
	// AgentTokenFile holds the token the agent has: it may post events and
	// list pending approvals, nothing more.
	AgentTokenFile string `json:"agent_token_file"`
	// OperatorTokenFile holds the token that stays on the host: it alone
	// may decide approvals and read events and the audit.
	OperatorTokenFile string `json:"operator_token_file"`
	// Approvals is the approval policy.
	Approvals Policy `json:"approvals"`
	// AuditFile receives one JSON line per approval asked and decided.
	// Empty means the lines go only to the merged stream in memory.
	AuditFile string `json:"audit_file,omitempty"`
	// AuditMaxBytes bounds the audit file (see bundle/audit); 0 means its
	// default.
	AuditMaxBytes int64  `json:"audit_max_bytes,omitempty"`
	Limits        Limits `json:"limits,omitzero"`
}

// Policy says which requests ask a human and how long they wait.
type Policy struct {
	// Kinds that are held for a human. A request of any other kind is
	// denied at once: the user did not ask to be asked.
	Kinds []approval.Kind `json:"kinds,omitempty"`
	// Timeout after which a held request is denied. Absent means
	// DefaultTimeout; 0 denies at once (unattended runs).
	Timeout *Duration `json:"timeout,omitempty"`
}

// Limits bound what the supervisor keeps in memory. Zero values mean the
// defaults.
type Limits struct {
	// MaxPending bounds requests held at once; more are denied at once.
	MaxPending int `json:"max_pending,omitempty"`
	// MaxPendingPerKind bounds the requests of one kind held at once, so
	// that a flood of one kind (the agent's tool asks, CONNECTs to many
	// hosts) cannot take the places of the others.
	MaxPendingPerKind int `json:"max_pending_per_kind,omitempty"`
	// MaxEvents bounds the events kept (oldest dropped first).
	MaxEvents int `json:"max_events,omitempty"`
	// MaxAudit bounds the audit lines kept for the merged stream (oldest
	// dropped first; the audit files keep everything within their size).
	MaxAudit int `json:"max_audit,omitempty"`
	// MaxEventBytes bounds one posted event's body (413 beyond it).
	MaxEventBytes int64 `json:"max_event_bytes,omitempty"`
	// MaxFollowers bounds live streams open at once (503 beyond it).
	MaxFollowers int `json:"max_followers,omitempty"`
	// MaxConns and MaxConnsPerClient bound the connections open at once,
	// in total and from one address (see bundle/listen: a newcomer takes
	// the place of the connection that has waited longest).
	MaxConns          int `json:"max_conns,omitempty"`
	MaxConnsPerClient int `json:"max_conns_per_client,omitempty"`
	// MaxAgentRequests bounds the agent's requests handled at once (503
	// beyond it), so that its connections can never all be busy: the
	// operator's always find a place.
	MaxAgentRequests int `json:"max_agent_requests,omitempty"`
}

// Defaults.
const (
	DefaultListen     = ":8419"
	DefaultTimeout    = 5 * time.Minute
	DefaultMaxPending = 64
	// DefaultMaxPendingPerKind leaves each of the three kinds room of its
	// own within DefaultMaxPending.
	DefaultMaxPendingPerKind = 20
	DefaultMaxEvents         = 1024
	DefaultMaxAudit          = 4096
	DefaultMaxEventBytes     = 64 << 10
	DefaultMaxFollowers      = 32
	DefaultMaxConns          = 256
	// DefaultMaxConnsPerClient is half the places: the agent and the
	// operator come from one address in the smolvm backend (the host),
	// from two in the docker backend.
	DefaultMaxConnsPerClient = 128
	DefaultMaxAgentRequests  = 64
)

func (l Limits) withDefaults() Limits {
	if l.MaxPending <= 0 {
		l.MaxPending = DefaultMaxPending
	}
	if l.MaxPendingPerKind <= 0 {
		l.MaxPendingPerKind = DefaultMaxPendingPerKind
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxAudit <= 0 {
		l.MaxAudit = DefaultMaxAudit
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxFollowers <= 0 {
		l.MaxFollowers = DefaultMaxFollowers
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = min(DefaultMaxConnsPerClient, l.MaxConns)
	}
	if l.MaxAgentRequests <= 0 {
		l.MaxAgentRequests = DefaultMaxAgentRequests
	}
	return l
}

// timeout is the policy's timeout with its default applied.
func (p Policy) timeout() time.Duration {
	if p.Timeout == nil {
		return DefaultTimeout
	}
	return p.Timeout.D()
}

func (p Policy) asks(k approval.Kind) bool { return slices.Contains(p.Kinds, k) }

// Duration is a time.Duration in the JSON configuration.
type Duration = conf.Duration

// LoadConfig reads and checks a JSON configuration. Unknown fields are
// errors, so a typo does not silently change the policy.
func LoadConfig(path string) (Config, error) {
	return conf.Load(path, "supervisor config", ParseConfig)
}

// ParseConfig decodes and checks a JSON configuration.
func ParseConfig(b []byte) (Config, error) { return conf.Parse[Config](b) }

// Validate checks the configuration without touching any file.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: want host:port, e.g. \":8419\"", c.Listen))
		}
	}
	if c.AgentTokenFile == "" {
		errs = append(errs, errors.New("agent_token_file is required: the agent's hooks authenticate with it"))
	}
	if c.OperatorTokenFile == "" {
		errs = append(errs, errors.New("operator_token_file is required: only its token may decide approvals"))
	}
	if c.AgentTokenFile != "" && c.AgentTokenFile == c.OperatorTokenFile {
		errs = append(errs, errors.New("agent_token_file and operator_token_file must differ: the agent must not hold the operator's token"))
	}
	for i, k := range c.Approvals.Kinds {
		switch k {
		case approval.Egress, approval.Push, approval.Tool:
		default:
			errs = append(errs, fmt.Errorf("approvals.kinds[%d]: %q is not one of egress, push, tool", i, k))
		}
	}
	if c.Approvals.Timeout != nil && *c.Approvals.Timeout < 0 {
		errs = append(errs, errors.New("approvals.timeout must not be negative (0 denies at once)"))
	}
	l := c.Limits
	if l.MaxPending < 0 || l.MaxPendingPerKind < 0 || l.MaxEvents < 0 || l.MaxAudit < 0 || l.MaxEventBytes < 0 || l.MaxFollowers < 0 ||
		l.MaxConns < 0 || l.MaxConnsPerClient < 0 || l.MaxAgentRequests < 0 {
		errs = append(errs, errors.New("limits must not be negative (0 means the default)"))
	}
	if c.AuditMaxBytes < 0 {
		errs = append(errs, errors.New("audit_max_bytes must not be negative (0 means the default)"))
	}
	return errors.Join(errs...)
}
