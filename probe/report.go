package probe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ReportVersion is the version of the report's JSON shape. Decode refuses
// any other, so a plugin never judges a report it cannot read.
const ReportVersion = 2

// Report is what one probe run observed: one Check per attempt, in a fixed
// order (the order of Kinds, then of the targets as given).
type Report struct {
	Version  int       `json:"version"`
	Started  time.Time `json:"started"`
	Duration Millis    `json:"duration_ms"`
	// Bottle and Branch are what the environment said ($BOTTLE_NAME,
	// $BOTTLE_BRANCH).
	Bottle string `json:"bottle,omitempty"`
	Branch string `json:"branch,omitempty"`
	// EnvNames are the names (never the values) of the probe's environment.
	EnvNames []string `json:"env_names"`
	Checks   []Check  `json:"checks"`
}

// Kind names one sort of check.
type Kind string

// The checks, by what they try.
const (
	// KindAllowed: a URL on the allowlist, through the proxy with the token.
	KindAllowed Kind = "allowed"
	// KindUnlisted: a URL not on the allowlist, through the proxy.
	KindUnlisted Kind = "unlisted"
	// KindDirect: a TCP connection that bypasses the proxy.
	KindDirect Kind = "direct"
	// KindLookup: a DNS lookup of an arbitrary name.
	KindLookup Kind = "lookup"
	// KindLoopback: a TCP connection to a host-loopback port that is not
	// the bundle's.
	KindLoopback Kind = "loopback"
	// KindSecrets: the environment and files, searched for the real secrets.
	KindSecrets Kind = "secrets"
	// KindGitClone: a clone from the gate with the token.
	KindGitClone Kind = "git-clone"
	// KindGitPushBranch: a push to the bottle's branch.
	KindGitPushBranch Kind = "git-push-branch"
	// KindGitPushProtected: a push to a ref the bottle may not write (main).
	KindGitPushProtected Kind = "git-push-protected"
	// KindEvent: an event posted to the supervisor with the agent's token.
	KindEvent Kind = "event"
	// KindOperatorRoute: an operator-only route of the supervisor with the
	// agent's token.
	KindOperatorRoute Kind = "operator-route"
	// KindProxyNoToken: the proxy asked without the token.
	KindProxyNoToken Kind = "proxy-no-token"
	// KindNonRoot: the probe's own uid (the agent's user).
	KindNonRoot Kind = "non-root"
	// KindNoCapabilities: the probe's effective capabilities.
	KindNoCapabilities Kind = "no-capabilities"
	// KindNoNewPrivs: the probe's no_new_privs flag.
	KindNoNewPrivs Kind = "no-new-privileges"
	// KindReadOnlyRoot: a file created in the root filesystem.
	KindReadOnlyRoot Kind = "read-only-root"
)

// Kinds lists every kind in report order.
var Kinds = []Kind{KindAllowed, KindUnlisted, KindDirect, KindLookup, KindLoopback, KindSecrets,
	KindGitClone, KindGitPushBranch, KindGitPushProtected, KindEvent, KindOperatorRoute, KindProxyNoToken,
	KindNonRoot, KindNoCapabilities, KindNoNewPrivs, KindReadOnlyRoot}

// Outcome is what became of one attempt, without judging it: whether that is
// good depends on the kind, and for loopback on the network mode.
type Outcome string

const (
	// OutcomeOK means it went through. The target answered (for a proxied
	// request: a response that is not the proxy's own refusal or error), the
	// connection opened, the name resolved to addresses, the push or the
	// request was accepted.
	OutcomeOK Outcome = "ok"
	// OutcomeRefused means a bottle component said no (the proxy's 403 or 407,
	// the gate's "ng", the supervisor's 4xx).
	OutcomeRefused Outcome = "refused"
	// OutcomeFailed means it did not go through for another reason (connection
	// refused or timed out, no DNS answer, a TLS error, the proxy's 502).
	OutcomeFailed Outcome = "failed"
	// OutcomeFound means the secret search found a secret.
	OutcomeFound Outcome = "found"
	// OutcomeClean means the secret search found none.
	OutcomeClean Outcome = "clean"
	// OutcomeSkipped means there was nothing to try (no target was given).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeError means the probe could not try (no token file, a bad URL, an
	// earlier step failed).
	OutcomeError Outcome = "error"
)

// Check is one attempt: what was tried, what happened, and the evidence.
type Check struct {
	Kind    Kind    `json:"kind"`
	Target  string  `json:"target,omitempty"`
	Tried   string  `json:"tried"`
	Outcome Outcome `json:"outcome"`
	// Result says in words what happened.
	Result   string   `json:"result"`
	Evidence Evidence `json:"evidence,omitzero"`
}

// Evidence is the raw material of a check; only the fields that apply are
// set. It never holds a secret or a token: bodies are cut short and the
// secret search reports only where it found something.
type Evidence struct {
	Elapsed Millis `json:"elapsed_ms,omitempty"`
	// Status is an HTTP status; ConnectStatus the proxy's answer to CONNECT.
	Status        int  `json:"status,omitempty"`
	ConnectStatus int  `json:"connect_status,omitempty"`
	ByProxy       bool `json:"by_proxy,omitempty"` // the response is the proxy's own text
	// Body is the first bytes of the response body, printable only.
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
	// TLS: the server's leaf, and whether it verified against CAFiles.
	TLSVerified bool     `json:"tls_verified,omitempty"`
	TLSSubject  string   `json:"tls_subject,omitempty"`
	TLSIssuer   string   `json:"tls_issuer,omitempty"`
	CAFiles     []string `json:"ca_files,omitempty"`
	// Proxy is the proxy asked (scheme://host:port, no credentials).
	Proxy string `json:"proxy,omitempty"`
	// RemoteAddr is the peer of an opened TCP connection.
	RemoteAddr string `json:"remote_addr,omitempty"`
	// Unresolved is set when a connection failed because its host name did
	// not resolve: no connection was even attempted.
	Unresolved bool `json:"unresolved,omitempty"`
	// DNS: the addresses returned, and how the lookup failed.
	Addrs       []string `json:"addrs,omitempty"`
	DNSNotFound bool     `json:"dns_not_found,omitempty"`
	DNSTimeout  bool     `json:"dns_timeout,omitempty"`
	DNSServer   string   `json:"dns_server,omitempty"`
	// Git: the ref, commit and the server's messages.
	Ref      string `json:"ref,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Refs     int    `json:"refs,omitempty"`
	Messages string `json:"messages,omitempty"`
	// Secrets: where a secret was found (never the secret) and how much
	// was searched.
	Found   []string    `json:"found,omitempty"`
	Scanned *ScanCounts `json:"scanned,omitempty"`
	// The probe's own process: its effective uid, effective capabilities
	// (hexadecimal, as /proc/self/status has them) and no_new_privs flag;
	// ReadOnly is set when a write failed because the filesystem is
	// read-only (EROFS).
	UID        *int   `json:"uid,omitempty"`
	CapEff     string `json:"cap_eff,omitempty"`
	NoNewPrivs *bool  `json:"no_new_privs,omitempty"`
	ReadOnly   bool   `json:"read_only,omitempty"`
}

// ScanCounts say how much the secret search covered.
type ScanCounts struct {
	Secrets   int   `json:"secrets"`
	EnvValues int   `json:"env_values"`
	Files     int   `json:"files"`
	Bytes     int64 `json:"bytes"`
	// Skipped counts files not read: too large, unreadable, or past the
	// budget.
	Skipped int `json:"skipped"`
	// Truncated is set when the budget ran out before every path was read.
	Truncated bool     `json:"truncated,omitempty"`
	Paths     []string `json:"paths"`
}

// Millis is a duration written in JSON as whole milliseconds.
type Millis time.Duration

// MarshalJSON writes m in milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(m).Milliseconds())
}

// UnmarshalJSON reads milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration: want milliseconds: %w", err)
	}
	*m = Millis(time.Duration(ms) * time.Millisecond)
	return nil
}

// Decode reads a report as the probe prints it, refusing unknown fields and
// other versions.
func Decode(data []byte) (Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("decoding the probe's report: %w", err)
	}
	if dec.More() {
		return Report{}, fmt.Errorf("decoding the probe's report: data after the JSON object")
	}
	if r.Version != ReportVersion {
		return Report{}, fmt.Errorf("the probe's report has version %d, this docker bottle reads version %d: use a probe image from the same docker bottle", r.Version, ReportVersion)
	}
	return r, nil
}

// Of returns the checks of kind k, in report order.
func (r Report) Of(k Kind) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Kind == k {
			out = append(out, c)
		}
	}
	return out
}
