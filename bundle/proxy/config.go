package proxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/conf"
	"github.com/docker-bottle/docker-bottle/bundle/defaults"
)

// Config is the proxy's whole configuration. The plugin writes it as JSON into
// the bottle's stage dir; the bundle reads it with LoadConfig. Secrets are not
// in it: it names the files (0600) that hold them.
type Config struct {
	// Listen is the TCP address to serve on; empty means DefaultListen.
	Listen string `json:"listen,omitempty"`
	// Bottle names the bottle in audit lines and refusals.
	Bottle string `json:"bottle"`
	// TokenFile holds the bottle's proxy token. Clients send it as the
	// password of Proxy-Authorization: Basic.
	TokenFile string `json:"token_file"`
	// Rules are the egress rules; anything they do not allow is denied.
	Rules []Rule `json:"rules,omitempty"`
	// Secrets are headers the proxy adds for one host each.
	Secrets []Secret `json:"secrets,omitempty"`
	// CACertFile and CAKeyFile are the bottle CA, needed when some host is
	// intercepted (it has secrets or method/path rules).
	CACertFile string `json:"ca_cert_file,omitempty"`
	CAKeyFile  string `json:"ca_key_file,omitempty"`
	// RootsFile is a PEM bundle of the roots intercepted upstreams are
	// checked against (the host's system CA file). Empty means the roots
	// embedded in the binary.
	RootsFile string `json:"roots_file,omitempty"`
	// ExtraCAFile is a PEM bundle trusted in addition to the roots, e.g. a
	// corporate intercepting proxy's CA.
	ExtraCAFile string `json:"extra_ca_file,omitempty"`
	// AuditFile receives one JSON line per decision. Empty means no audit.
	AuditFile string `json:"audit_file,omitempty"`
	// AuditMaxBytes bounds the audit file (see bundle/audit); 0 means its
	// default.
	AuditMaxBytes int64 `json:"audit_max_bytes,omitempty"`
	// Approvals holds connections to unlisted hosts for a human's decision
	// (when the bundle gives the proxy a Decider) instead of denying them.
	Approvals bool `json:"approvals,omitempty"`
	// ApprovalTimeout is how long such a connection waits; then it is denied.
	ApprovalTimeout Duration `json:"approval_timeout,omitempty"`
	Limits          Limits   `json:"limits,omitzero"`
}

// Rule allows (or, with Deny, refuses) connections to a host.
type Rule struct {
	// Host is an exact name ("api.github.com"), an IP literal, or "*.suffix"
	// which matches every name below suffix but not suffix itself.
	Host string `json:"host"`
	// Ports the rule covers; empty means 443 and 80.
	Ports []int `json:"ports,omitempty"`
	// Private lets the host resolve to private (RFC 1918, ULA, site-local)
	// or CGNAT addresses, which are refused otherwise. It does not open
	// loopback or the cloud metadata addresses: those are opt-ins of their
	// own.
	Private bool `json:"private,omitempty"`
	// Loopback lets the host resolve to loopback (the bundle itself).
	Loopback bool `json:"loopback,omitempty"`
	// Metadata lets the host resolve to link-local addresses and the other
	// addresses where cloud metadata services answer (169.254.169.254,
	// fd00:ec2::254, 100.100.100.200).
	Metadata bool `json:"metadata,omitempty"`
	// Deny refuses what the rule matches, whatever other rules allow.
	Deny bool `json:"deny,omitempty"`
	// Methods and Paths narrow the rule to some HTTP requests. A host with
	// such a rule is intercepted so that they can be checked. A path is exact,
	// or a prefix when it ends in "*" ("/repos/*").
	Methods []string `json:"methods,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	// WebSocket lets WebSocket upgrades through to a host the proxy
	// intercepts (it has secrets, or method or path rules). Nothing inside
	// a WebSocket is checked against the rules or redacted, so this is an
	// opt-in; other hosts take WebSocket upgrades without it. No other
	// upgrade (h2c) ever passes.
	WebSocket bool `json:"websocket,omitempty"`
	// AllowNoSNI lets a raw tunnel to the host start with a TLS ClientHello
	// that names no server. Without it such a tunnel is refused: a server
	// picked without a name could be any tenant of a shared front end.
	AllowNoSNI bool `json:"allow_no_sni,omitempty"`
}

// Secret is a credential the proxy adds to requests for one host, so that the
// bottle never holds it.
type Secret struct {
	// Host is the exact host name the secret is sent to (never to any other).
	Host string `json:"host"`
	// Header is the request header that carries it, e.g. "Authorization".
	Header string `json:"header"`
	// Format is the header value with "{value}" standing for the secret,
	// e.g. "Bearer {value}". Empty means the bare value.
	Format string `json:"format,omitempty"`
	// Placeholder, when set, is a stand-in the agent sends in Header: the
	// proxy replaces it with the secret and otherwise leaves the header
	// alone. When empty, the proxy sets Header on every request to Host.
	Placeholder string `json:"placeholder,omitempty"`
	// ValueFile holds the secret (0600; surrounding whitespace ignored).
	ValueFile string `json:"value_file"`
}

// Limits bound what one client can hold. Zero values mean the defaults.
type Limits struct {
	// MaxHeaderBytes bounds a request's line and headers (431 beyond it).
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`
	// HeaderTimeout bounds reading a request's line and headers (408).
	HeaderTimeout Duration `json:"header_timeout,omitempty"`
	// IdleTimeout closes keep-alive connections and tunnels that carry no
	// byte for this long.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// DialTimeout bounds connecting to an upstream (504).
	DialTimeout Duration `json:"dial_timeout,omitempty"`
	// MaxTunnels bounds concurrent CONNECT tunnels (503 beyond it).
	MaxTunnels int `json:"max_tunnels,omitempty"`
	// MaxConns bounds concurrent client connections; a newcomer takes the
	// place of the one that has waited longest for its next request.
	MaxConns int `json:"max_conns,omitempty"`
	// MaxAuthFailures is how many requests without the right token (407)
	// one connection may make before the proxy closes it. The default, 1,
	// closes it with the first 407: clients that answer the challenge (curl,
	// git) do so on a new connection.
	MaxAuthFailures int `json:"max_auth_failures,omitempty"`
}

// Defaults for the listen address, Limits and approvals.
const (
	DefaultListen          = ":3128"
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultDialTimeout     = 15 * time.Second
	DefaultMaxTunnels      = 512
	DefaultApprovalTimeout = defaults.ApprovalTimeout
	DefaultMaxAuthFailures = 1
)

// DefaultPorts are the ports of a rule that names none.
var DefaultPorts = []int{443, 80}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = Duration(DefaultHeaderTimeout)
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if l.DialTimeout <= 0 {
		l.DialTimeout = Duration(DefaultDialTimeout)
	}
	if l.MaxTunnels <= 0 {
		l.MaxTunnels = DefaultMaxTunnels
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 2 * l.MaxTunnels
	}
	if l.MaxAuthFailures <= 0 {
		l.MaxAuthFailures = DefaultMaxAuthFailures
	}
	return l
}

// Duration is a time.Duration in the JSON configuration.
type Duration = conf.Duration

// LoadConfig reads and checks a JSON configuration. Unknown fields are
// errors, so a typo does not silently loosen the rules.
func LoadConfig(path string) (Config, error) {
	return conf.Load(path, "proxy config", ParseConfig)
}

// ParseConfig decodes and checks a JSON configuration.
func ParseConfig(b []byte) (Config, error) { return conf.Parse[Config](b) }

// Validate checks the configuration without touching any file.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: want host:port, e.g. \":3128\"", c.Listen))
		}
	}
	if c.TokenFile == "" {
		errs = append(errs, errors.New("token_file is required: the proxy serves no request without the bottle's token"))
	}
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("rules[%d]: %w", i, err))
		}
	}
	intercepts := false
	for i, s := range c.Secrets {
		if err := s.validate(); err != nil {
			errs = append(errs, fmt.Errorf("secrets[%d]: %w", i, err))
		}
		intercepts = true
	}
	for _, r := range c.Rules {
		if r.l7() {
			intercepts = true
		}
	}
	if intercepts && (c.CACertFile == "" || c.CAKeyFile == "") {
		errs = append(errs, errors.New("ca_cert_file and ca_key_file are required when secrets or method/path rules make the proxy intercept TLS"))
	}
	if c.ApprovalTimeout < 0 {
		errs = append(errs, errors.New("approval_timeout must not be negative"))
	}
	return errors.Join(errs...)
}

func (r Rule) l7() bool { return len(r.Methods) > 0 || len(r.Paths) > 0 }

// reach is what the rule opts its host in to beyond public addresses.
func (r Rule) reach() reach {
	var out reach
	if r.Private {
		out |= reachPrivate
	}
	if r.Loopback {
		out |= reachLoopback
	}
	if r.Metadata {
		out |= reachMetadata
	}
	return out
}

func (r Rule) validate() error {
	if err := validHostPattern(r.Host); err != nil {
		return err
	}
	for _, p := range r.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("host %s: port %d is not between 1 and 65535", r.Host, p)
		}
	}
	for _, m := range r.Methods {
		if m == "" || m != strings.ToUpper(m) || !isToken(m) {
			return fmt.Errorf("host %s: method %q: use an upper-case HTTP method such as GET", r.Host, m)
		}
	}
	for _, p := range r.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("host %s: path %q must start with /", r.Host, p)
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			return fmt.Errorf("host %s: path %q: \"*\" may only end a path (a prefix match)", r.Host, p)
		}
	}
	return nil
}

func (s Secret) validate() error {
	if err := validHostPattern(s.Host); err != nil {
		return err
	}
	if strings.HasPrefix(s.Host, "*.") {
		return fmt.Errorf("host %s: a secret goes to one exact host, not a wildcard", s.Host)
	}
	if s.Header == "" || !isToken(s.Header) {
		return fmt.Errorf("host %s: header %q is not a valid HTTP header name", s.Host, s.Header)
	}
	if s.Format != "" && !strings.Contains(s.Format, "{value}") {
		return fmt.Errorf("host %s: format %q lacks {value}", s.Host, s.Format)
	}
	if s.ValueFile == "" {
		return fmt.Errorf("host %s: value_file is required", s.Host)
	}
	return nil
}

// validHostPattern accepts a DNS name, an IP literal, or "*." and a name.
func validHostPattern(h string) error {
	if h == "" {
		return errors.New("host is empty")
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("host %q: \"*\" is only allowed as a leading \"*.\"", h)
	}
	if name != h {
		if _, err := parseIP(name); err == nil {
			return fmt.Errorf("host %q: a wildcard cannot cover an IP address", h)
		}
	}
	if _, err := parseIP(name); err == nil {
		return nil
	}
	if normHost(name) == "" || !validDNSName(normHost(name)) {
		return fmt.Errorf("host %q is not a valid host name", h)
	}
	return nil
}

// validDNSName checks letters, digits, '-', '_' and dots, 253 bytes at most,
// labels of 1 to 63 bytes.
func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

func portString(p int) string { return strconv.Itoa(p) }
