package probe

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config says what the probe tries. Every field has a flag of the same
// name (dashes for underscores); a JSON file given with --config holds the
// same fields, since command lines of smolvm and docker exec are visible to
// anyone on the host (nothing in here is secret, but it can be long). Empty
// endpoint fields come from the bottle's environment (WithEnv).
type Config struct {
	// Allowed URLs (http or https) must be reachable through the proxy.
	Allowed []string `json:"allowed,omitempty"`
	// Unlisted URLs must be refused by the proxy with a 403 naming the host.
	Unlisted []string `json:"unlisted,omitempty"`
	// Direct HOST:PORT targets are dialled without the proxy: it must fail.
	// Use endpoints that do listen (the upstream's own address), or a
	// refusal proves nothing.
	Direct []string `json:"direct,omitempty"`
	// Lookup names are resolved; no useful answer is expected.
	Lookup []string `json:"lookup,omitempty"`
	// LookupDomain: a random name under it is resolved too (default
	// DefaultLookupDomain).
	LookupDomain string `json:"lookup_domain,omitempty"`
	// Loopback HOST:PORT targets are host-loopback ports that are not the
	// bundle's; the judge decides by network mode.
	Loopback []string `json:"loopback,omitempty"`
	// Secrets are the real secrets, as hashes: the probe looks for them.
	Secrets []SecretHash `json:"secrets,omitempty"`
	// Scan adds paths to the secret search (besides /run/bottle,
	// /etc/docker-bottle, $HOME, the workspace and /proc/self).
	Scan []string `json:"scan,omitempty"`
	// ScanBudget bounds the bytes of files read (default DefaultScanBudget).
	ScanBudget int64 `json:"scan_budget,omitempty"`
	// Workspace is searched too (default DefaultWorkspace).
	Workspace string `json:"workspace,omitempty"`
	// Root is the directory where a file must not be created: the root
	// filesystem (default "/").
	Root string `json:"root,omitempty"`

	// Proxy is the egress proxy's URL, without credentials ($HTTPS_PROXY,
	// $HTTP_PROXY).
	Proxy string `json:"proxy,omitempty"`
	// GateURL is the git gate's URL ($BOTTLE_GATE_URL).
	GateURL string `json:"gate_url,omitempty"`
	// SuperviseURL is the supervisor's URL ($BOTTLE_SUPERVISE_URL).
	SuperviseURL string `json:"supervise_url,omitempty"`
	// TokenFile holds the agent's token ($BOTTLE_TOKEN_FILE).
	TokenFile string `json:"token_file,omitempty"`
	// Branch is the bottle's branch, without refs/heads/ ($BOTTLE_BRANCH).
	Branch string `json:"branch,omitempty"`
	// ProtectedRef is a ref the bottle must not write (default
	// refs/heads/main).
	ProtectedRef string `json:"protected_ref,omitempty"`
	// GitDepth makes the clone shallow (0: full).
	GitDepth int `json:"git_depth,omitempty"`
	// GitTimeout bounds the clone and each push (default DefaultGitTimeout).
	GitTimeout Duration `json:"git_timeout,omitempty"`
	// CAFiles are PEM files that https through the proxy is verified
	// against ($SSL_CERT_FILE, $BOTTLE_CA_FILE, $NODE_EXTRA_CA_CERTS).
	CAFiles []string `json:"ca_files,omitempty"`
	// Resolver is a DNS server (HOST:PORT) to ask instead of the one in
	// /etc/resolv.conf.
	Resolver string `json:"resolver,omitempty"`

	// Timeout bounds each request (default DefaultTimeout); DialTimeout
	// each direct and loopback connection (default DefaultDialTimeout).
	Timeout     Duration `json:"timeout,omitempty"`
	DialTimeout Duration `json:"dial_timeout,omitempty"`
}

// SecretHash stands for one real secret: the sha256 of its bytes (as the
// bundle reads it: surrounding whitespace trimmed) and its length.
type SecretHash struct {
	SHA256 string `json:"sha256"`
	Len    int    `json:"len"`
}

// Defaults.
const (
	DefaultLookupDomain = "example.com"
	DefaultWorkspace    = "/workspace"
	DefaultProtectedRef = "refs/heads/main"
	DefaultTimeout      = 10 * time.Second
	DefaultDialTimeout  = 3 * time.Second
	DefaultGitTimeout   = 2 * time.Minute
	DefaultScanBudget   = 32 << 20
	// MaxFileBytes: larger files are not searched.
	MaxFileBytes = 1 << 20
	// MaxSecretLen bounds a secret's length (a longer one is a file, not a
	// credential).
	MaxSecretLen = 64 << 10
)

// Duration is a time.Duration written in JSON as a Go duration string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want a Go duration such as \"10s\"", s)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads a JSON config file, refusing unknown fields.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading the probe config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("probe config %s: %w", path, err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("probe config %s: data after the JSON object", path)
	}
	return c, nil
}

type listFlag struct{ l *[]string }

func (f listFlag) String() string {
	if f.l == nil {
		return ""
	}
	return strings.Join(*f.l, ",")
}
func (f listFlag) Set(v string) error { *f.l = append(*f.l, v); return nil }

type durationFlag struct{ d *Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.D().String()
}
func (f durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 10s")
	}
	*f.d = Duration(d)
	return nil
}

// ParseArgs reads the probe's command line: the flags, and the file of
// --config under them (lists add up, a flag overrides a scalar of the file).
// getenv fills what neither gives (os.Getenv in the probe).
func ParseArgs(args []string, stderr io.Writer, getenv func(string) string) (Config, error) {
	var c Config
	var configFile string
	var sums []string
	var lens []string
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bottle-probe probe [flags]\n\nTries every way out of the bottle and prints one JSON report on stdout.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&configFile, "config", "", "JSON file holding these settings (flags add to it)")
	fs.Var(listFlag{&c.Allowed}, "allowed", "URL on the allowlist, reached through the proxy (repeatable)")
	fs.Var(listFlag{&c.Unlisted}, "unlisted", "URL not on the allowlist, which the proxy must refuse (repeatable)")
	fs.Var(listFlag{&c.Direct}, "direct", "HOST:PORT dialled without the proxy, which must fail (repeatable)")
	fs.Var(listFlag{&c.Lookup}, "lookup", "name to resolve, which must give no useful answer (repeatable)")
	fs.StringVar(&c.LookupDomain, "lookup-domain", "", "a random name under this domain is resolved too (default "+DefaultLookupDomain+")")
	fs.Var(listFlag{&c.Loopback}, "loopback", "host-loopback HOST:PORT that is not the bundle's (repeatable)")
	fs.Var(listFlag{&sums}, "secret-sha256", "sha256 (hex) of a real secret to look for (repeatable, paired with --secret-len)")
	fs.Var(listFlag{&lens}, "secret-len", "length in bytes of the secret of the --secret-sha256 at the same position")
	fs.Var(listFlag{&c.Scan}, "scan", "extra path to search for secrets (repeatable)")
	fs.Int64Var(&c.ScanBudget, "scan-budget", 0, "bytes of files the secret search reads at most (default 32 MiB)")
	fs.StringVar(&c.Workspace, "workspace", "", "the workspace, searched for secrets (default "+DefaultWorkspace+")")
	fs.StringVar(&c.Root, "root", "", "directory where creating a file must fail, the read-only root (default /)")
	fs.StringVar(&c.Proxy, "proxy", "", "egress proxy URL (default $HTTPS_PROXY, $HTTP_PROXY)")
	fs.StringVar(&c.GateURL, "gate", "", "git gate URL (default $BOTTLE_GATE_URL)")
	fs.StringVar(&c.SuperviseURL, "supervise", "", "supervisor URL (default $BOTTLE_SUPERVISE_URL)")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding the agent's token (default $BOTTLE_TOKEN_FILE)")
	fs.StringVar(&c.Branch, "branch", "", "the bottle's branch (default $BOTTLE_BRANCH)")
	fs.StringVar(&c.ProtectedRef, "protected-ref", "", "a ref the bottle must not push to (default "+DefaultProtectedRef+")")
	fs.IntVar(&c.GitDepth, "git-depth", 0, "clone this many commits deep (0: everything)")
	fs.Var(listFlag{&c.CAFiles}, "ca-file", "PEM file to verify https against (repeatable; default $SSL_CERT_FILE, $BOTTLE_CA_FILE, $NODE_EXTRA_CA_CERTS)")
	fs.StringVar(&c.Resolver, "resolver", "", "DNS server HOST:PORT to ask instead of /etc/resolv.conf's")
	fs.Var(durationFlag{&c.Timeout}, "timeout", "time limit of each request (default 10s)")
	fs.Var(durationFlag{&c.GitTimeout}, "git-timeout", "time limit of the clone and of each push (default 2m)")
	fs.Var(durationFlag{&c.DialTimeout}, "dial-timeout", "time limit of each direct or loopback connection (default 3s)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: every setting is a flag (see --help)", fs.Arg(0))
	}
	if len(sums) != len(lens) {
		return Config{}, fmt.Errorf("%d --secret-sha256 but %d --secret-len: give one length for each hash", len(sums), len(lens))
	}
	for i := range sums {
		n, err := strconv.Atoi(lens[i])
		if err != nil {
			return Config{}, fmt.Errorf("--secret-len %q: want a number of bytes", lens[i])
		}
		c.Secrets = append(c.Secrets, SecretHash{SHA256: sums[i], Len: n})
	}
	if configFile != "" {
		file, err := LoadConfig(configFile)
		if err != nil {
			return Config{}, err
		}
		c = file.merge(c, setFlags(fs))
	}
	c = c.WithEnv(getenv)
	return c, c.Validate()
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// merge lays the flags f over the file's c: lists add up, a flag that was
// set overrides a scalar.
func (c Config) merge(f Config, set map[string]bool) Config {
	c.Allowed = append(c.Allowed, f.Allowed...)
	c.Unlisted = append(c.Unlisted, f.Unlisted...)
	c.Direct = append(c.Direct, f.Direct...)
	c.Lookup = append(c.Lookup, f.Lookup...)
	c.Loopback = append(c.Loopback, f.Loopback...)
	c.Secrets = append(c.Secrets, f.Secrets...)
	c.Scan = append(c.Scan, f.Scan...)
	c.CAFiles = append(c.CAFiles, f.CAFiles...)
	scalar := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	scalar("lookup-domain", &c.LookupDomain, f.LookupDomain)
	scalar("workspace", &c.Workspace, f.Workspace)
	scalar("root", &c.Root, f.Root)
	scalar("proxy", &c.Proxy, f.Proxy)
	scalar("gate", &c.GateURL, f.GateURL)
	scalar("supervise", &c.SuperviseURL, f.SuperviseURL)
	scalar("token-file", &c.TokenFile, f.TokenFile)
	scalar("branch", &c.Branch, f.Branch)
	scalar("protected-ref", &c.ProtectedRef, f.ProtectedRef)
	scalar("resolver", &c.Resolver, f.Resolver)
	if set["scan-budget"] {
		c.ScanBudget = f.ScanBudget
	}
	if set["git-depth"] {
		c.GitDepth = f.GitDepth
	}
	if set["timeout"] {
		c.Timeout = f.Timeout
	}
	if set["git-timeout"] {
		c.GitTimeout = f.GitTimeout
	}
	if set["dial-timeout"] {
		c.DialTimeout = f.DialTimeout
	}
	return c
}

// WithEnv fills what c leaves empty from the bottle's environment and the
// defaults.
func (c Config) WithEnv(getenv func(string) string) Config {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	if c.Proxy == "" {
		c.Proxy = first("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
	}
	if c.GateURL == "" {
		c.GateURL = getenv("BOTTLE_GATE_URL")
	}
	if c.SuperviseURL == "" {
		c.SuperviseURL = getenv("BOTTLE_SUPERVISE_URL")
	}
	if c.TokenFile == "" {
		c.TokenFile = getenv("BOTTLE_TOKEN_FILE")
	}
	if c.Branch == "" {
		c.Branch = getenv("BOTTLE_BRANCH")
	}
	if len(c.CAFiles) == 0 {
		for _, n := range []string{"SSL_CERT_FILE", "BOTTLE_CA_FILE", "NODE_EXTRA_CA_CERTS"} {
			if v := getenv(n); v != "" {
				c.CAFiles = append(c.CAFiles, v)
			}
		}
	}
	if c.LookupDomain == "" {
		c.LookupDomain = DefaultLookupDomain
	}
	if c.Workspace == "" {
		c.Workspace = DefaultWorkspace
	}
	if c.Root == "" {
		c.Root = "/"
	}
	if c.ProtectedRef == "" {
		c.ProtectedRef = DefaultProtectedRef
	}
	if c.ScanBudget == 0 {
		c.ScanBudget = DefaultScanBudget
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = Duration(DefaultDialTimeout)
	}
	if c.GitTimeout == 0 {
		c.GitTimeout = Duration(DefaultGitTimeout)
	}
	return c
}

// Validate checks what can be checked before trying anything. Endpoints
// that are missing are not errors: the checks that need them say so in the
// report.
func (c Config) Validate() error {
	var errs []error
	for _, u := range append(append([]string(nil), c.Allowed...), c.Unlisted...) {
		if _, err := targetURL(u); err != nil {
			errs = append(errs, err)
		}
	}
	for _, hp := range append(append([]string(nil), c.Direct...), c.Loopback...) {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			errs = append(errs, fmt.Errorf("target %q: want HOST:PORT", hp))
		}
	}
	if c.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("--resolver %q: want HOST:PORT of a DNS server", c.Resolver))
		}
	}
	for i, s := range c.Secrets {
		if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("secret %d: sha256 %q is not 64 hex digits", i+1, s.SHA256))
		}
		if s.Len < 1 || s.Len > MaxSecretLen {
			errs = append(errs, fmt.Errorf("secret %d: length %d is not between 1 and %d", i+1, s.Len, MaxSecretLen))
		}
	}
	if c.ScanBudget < 0 {
		errs = append(errs, errors.New("scan budget must not be negative"))
	}
	if c.GitDepth < 0 {
		errs = append(errs, errors.New("git depth must not be negative"))
	}
	if c.ProtectedRef != "" && !strings.HasPrefix(c.ProtectedRef, "refs/") {
		errs = append(errs, fmt.Errorf("protected ref %q: want a full ref name such as refs/heads/main", c.ProtectedRef))
	}
	return errors.Join(errs...)
}

// targetURL parses an http or https URL to try.
func targetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("URL %q: want http:// or https:// with a host and no credentials", raw)
	}
	return u, nil
}
