// Package proxy is the bundle's egress proxy: the bottle's only way to the
// network. It is an HTTP/1.1 forward proxy (absolute-URI requests and
// CONNECT) that demands the bottle's token, allows only what the egress rules
// list, resolves names itself and refuses private destinations, terminates
// TLS only for hosts with secrets or method/path rules, and writes one audit
// line per decision (repeated refusals summed up). What such a host sends
// back is redacted: a secret's real value, echoed in a response header,
// status line, trailer or body, is replaced by the placeholder the agent
// sent (see redactResponse). A tunnel it does not intercept must start with
// a TLS ClientHello that names the host the CONNECT named (see
// tunnelStart). It imports nothing of the plugin side.
package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/auth"
	"github.com/docker-bottle/docker-bottle/bundle/listen"
	"github.com/docker-bottle/docker-bottle/pki"
)

// Proxy serves one bottle's egress.
type Proxy struct {
	cfg   Config
	lim   Limits
	token string
	pol   *policy

	minter    *pki.Minter
	transport *http.Transport

	audit    *audit.Logger
	ownAudit bool
	log      *slog.Logger
	decider  approval.Decider
	resolver Resolver
	dial     DialFunc

	tunnels chan struct{}

	approvedMu sync.Mutex
	approved   map[string]bool // host:port a human allowed always

	refusals refusals // repeated refusals, summed up in the audit

	mu      sync.Mutex
	active  map[net.Conn]struct{}
	serving atomic.Bool

	nTunnels  atomic.Int64
	nRequests atomic.Uint64
	nDenied   atomic.Uint64
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithDecider holds connections to unlisted hosts for d's decision when the
// configuration enables approvals.
func WithDecider(d approval.Decider) Option { return func(p *Proxy) { p.decider = d } }

// WithResolver replaces the system resolver (tests).
func WithResolver(r Resolver) Option { return func(p *Proxy) { p.resolver = r } }

// WithDialer replaces the dialer for checked addresses (tests, benchmarks).
func WithDialer(d DialFunc) Option { return func(p *Proxy) { p.dial = d } }

// WithAudit writes audit lines to l instead of opening cfg.AuditFile, so the
// bundle can share one logger between its daemons.
func WithAudit(l *audit.Logger) Option { return func(p *Proxy) { p.audit, p.ownAudit = l, false } }

// WithLogger sends operational messages (never secrets) to l; the default
// is stderr.
func WithLogger(l *slog.Logger) Option { return func(p *Proxy) { p.log = l } }

// New checks cfg, reads the token, the secrets and the CA it names, and
// returns a proxy ready to Serve.
func New(cfg Config, opts ...Option) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid proxy config: %w", err)
	}
	p := &Proxy{
		cfg:      cfg,
		lim:      cfg.Limits.withDefaults(),
		approved: map[string]bool{},
		active:   map[net.Conn]struct{}{},
		resolver: net.DefaultResolver,
	}
	if p.cfg.ApprovalTimeout == 0 {
		p.cfg.ApprovalTimeout = Duration(DefaultApprovalTimeout)
	}
	for _, o := range opts {
		o(p)
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if p.dial == nil {
		p.dial = defaultDialer(p.lim.DialTimeout.D())
	}
	p.tunnels = make(chan struct{}, p.lim.MaxTunnels)

	tok, err := readSecretFile(cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the proxy token: %w", err)
	}
	p.token = tok
	values := map[int]string{}
	for i, s := range cfg.Secrets {
		v, err := readSecretFile(s.ValueFile)
		if err != nil {
			return nil, fmt.Errorf("reading the secret for %s: %w", s.Host, err)
		}
		values[i] = v
	}
	p.pol = compilePolicy(cfg, values)

	roots, err := loadRoots(cfg.RootsFile, cfg.ExtraCAFile)
	if err != nil {
		return nil, err
	}
	if cfg.CACertFile != "" || cfg.CAKeyFile != "" {
		ca, err := pki.LoadCA(cfg.CACertFile, cfg.CAKeyFile)
		if err != nil {
			return nil, err
		}
		if p.minter, err = pki.NewMinter(ca, 0); err != nil {
			return nil, err
		}
	}
	p.transport = &http.Transport{
		Proxy:               nil, // never chain to a proxy from the environment
		DialContext:         p.upstreamDial,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: p.lim.DialTimeout.D(),
		// HTTP/1.1 upstream: streaming stays simple and, measured on
		// loopback, HTTP/2 was no faster for one agent's traffic.
		ForceAttemptHTTP2:      false,
		ReadBufferSize:         64 << 10,
		WriteBufferSize:        64 << 10,
		DisableCompression:     true, // pass bodies through as the upstream sent them
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: int64(p.lim.MaxHeaderBytes) * 4,
	}
	if p.audit == nil && cfg.AuditFile != "" {
		l, err := audit.Open(cfg.AuditFile, cfg.AuditMaxBytes)
		if err != nil {
			return nil, err
		}
		p.audit, p.ownAudit = l, true
	}
	return p, nil
}

// readSecretFile reads a token or secret, ignoring surrounding whitespace.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// loadRoots builds the pool intercepted upstreams are checked against.
func loadRoots(rootsFile, extraFile string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if rootsFile != "" {
		b, err := os.ReadFile(rootsFile)
		if err != nil {
			return nil, fmt.Errorf("reading roots file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("roots file %s holds no PEM certificate", rootsFile)
		}
	} else {
		pool = fallbackRoots().Clone()
	}
	if extraFile != "" {
		b, err := os.ReadFile(extraFile)
		if err != nil {
			return nil, fmt.Errorf("reading extra CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("extra CA file %s holds no PEM certificate", extraFile)
		}
	}
	return pool, nil
}

// Health is a snapshot the supervisor reports.
type Health struct {
	Serving  bool   `json:"serving"`
	Conns    int    `json:"conns"`
	Tunnels  int64  `json:"tunnels"`
	Requests uint64 `json:"requests"`
	Denied   uint64 `json:"denied"`
}

// Health reports whether the proxy serves and what it carries.
func (p *Proxy) Health() Health {
	p.mu.Lock()
	n := len(p.active)
	p.mu.Unlock()
	return Health{
		Serving:  p.serving.Load(),
		Conns:    n,
		Tunnels:  p.nTunnels.Load(),
		Requests: p.nRequests.Load(),
		Denied:   p.nDenied.Load(),
	}
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// open connection, waits for their handlers (and audit lines) to finish and
// returns nil.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	p.serving.Store(true)
	defer p.serving.Store(false)
	// MaxConns bounds the connections; when it is reached a newcomer takes
	// the place of the one that has waited longest for its next request
	// (bundle/listen), so slow clients cannot keep the agent's next
	// request out. No cap per client below it: the agent is the proxy's
	// client, and in loopback mode every local process comes from the
	// same address as the agent.
	ln = listen.Limit(ln, listen.Limits{MaxConns: p.lim.MaxConns, MaxPerClient: p.lim.MaxConns})
	var handlers sync.WaitGroup
	defer p.flushRefusals() // after the handlers' last lines
	defer handlers.Wait()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		p.closeAll()
	})
	defer stop()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.log.Warn("egress proxy: accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("egress proxy: accepting connections: %w", err)
		}
		backoff = 0
		if !p.track(c) {
			c.Close()
			return nil
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer p.untrack(c)
			p.serveConn(ctx, c)
		}()
	}
}

// Close writes what the audit still owes (the sums of repeated refusals)
// and releases the audit file the proxy opened itself.
func (p *Proxy) Close() error {
	p.writeRefusalSums(p.refusals.take(true))
	p.transport.CloseIdleConnections()
	if p.ownAudit {
		return p.audit.Close()
	}
	return nil
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == nil {
		return false
	}
	p.active[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	if p.active != nil {
		delete(p.active, c)
	}
	p.mu.Unlock()
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	active := p.active
	p.active = nil
	p.mu.Unlock()
	for c := range active {
		c.Close()
	}
}

// clientConn is one connection from a client: the outer TCP connection, or
// the TLS connection inside an intercepted tunnel.
type clientConn struct {
	net.Conn
	lr           *limitReader
	br           *bufio.Reader
	bw           *bufio.Writer
	client       string
	authFailures int // requests refused with 407
}

// newClientConn wraps c with buffers of bufSize: small for the proxy's own
// clients, whose connections mostly turn into tunnels that keep them for
// their lifetime, large for the inside of intercepted tunnels, which carry
// response bodies.
func newClientConn(c net.Conn, client string, bufSize int) *clientConn {
	lr := &limitReader{r: c, n: -1}
	return &clientConn{Conn: c, lr: lr, br: bufio.NewReaderSize(lr, bufSize), bw: bufio.NewWriterSize(c, bufSize), client: client}
}

// limitReader bounds the bytes read while a request's headers are read.
type limitReader struct {
	r   io.Reader
	n   int64 // -1: no limit
	hit bool
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.n == 0 {
		l.hit = true
		return 0, io.EOF
	}
	if l.n > 0 && int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	if l.n > 0 {
		l.n -= int64(n)
	}
	return n, err
}

// target is the fixed destination of the requests inside an intercepted
// tunnel.
type target struct {
	host     string
	port     int
	scheme   string // "https" when the agent spoke TLS in the tunnel
	inner    bool   // inside an intercepted tunnel: the CONNECT was decided
	approved bool   // a human allowed the host; no rule lists it
}

func (p *Proxy) serveConn(ctx context.Context, c net.Conn) {
	defer func() {
		// A bug must cost one connection, not the bottle's network.
		if r := recover(); r != nil {
			p.log.Error("egress proxy: internal error while serving a connection", "client", c.RemoteAddr().String(), "panic", fmt.Sprint(r))
		}
	}()
	cc := newClientConn(c, c.RemoteAddr().String(), 4<<10)
	p.serveRequests(ctx, cc, nil)
}

// serveRequests reads and handles requests on cc until it closes. With t
// nil cc is a client of the proxy; otherwise it is the agent's side of an
// intercepted tunnel to t.
func (p *Proxy) serveRequests(ctx context.Context, cc *clientConn, t *target) {
	for first := true; ; first = false {
		req, ok := p.readRequest(cc, first, t)
		if !ok {
			return
		}
		p.nRequests.Add(1)
		var keep bool
		if t == nil {
			// Busy while handled: a tunnel keeps its place.
			done := listen.Busy(cc.Conn)
			keep = p.handleProxyRequest(ctx, cc, req)
			done()
		} else {
			keep = p.handleTunnelRequest(ctx, cc, req, t)
		}
		if !keep {
			return
		}
	}
}

// readRequest reads the next request's line and headers within the limits.
// It answers malformed (400), slow (408) and oversized (431) requests itself,
// logs them and returns false; it returns false quietly when the client
// closes or idles out between requests.
func (p *Proxy) readRequest(cc *clientConn, first bool, t *target) (*http.Request, bool) {
	if !first {
		cc.SetReadDeadline(time.Now().Add(p.lim.IdleTimeout.D()))
		if _, err := cc.br.Peek(1); err != nil {
			return nil, false
		}
	}
	start := time.Now()
	cc.SetReadDeadline(start.Add(p.lim.HeaderTimeout.D()))
	cc.lr.n, cc.lr.hit = int64(p.lim.MaxHeaderBytes), false
	sawBytes := cc.br.Buffered() > 0
	req, err := http.ReadRequest(cc.br)
	cc.lr.n = -1
	if err == nil {
		cc.SetReadDeadline(time.Time{})
		return req, true
	}
	var ne net.Error
	status, what := http.StatusBadRequest, "malformed request"
	switch {
	case cc.lr.hit:
		status, what = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request headers larger than %d bytes", p.lim.MaxHeaderBytes)
	case errors.As(err, &ne) && ne.Timeout():
		status, what = http.StatusRequestTimeout, fmt.Sprintf("request headers not received within %s", p.lim.HeaderTimeout.D())
	case errors.Is(err, io.EOF) && !sawBytes, errors.Is(err, net.ErrClosed):
		return nil, false // the client closed a connection it did not use
	}
	rec := p.newRecord(cc, start)
	if t != nil {
		rec.Host, rec.Port = t.host, t.port
	}
	rec.Decision, rec.Reason, rec.Status = "deny", what, status
	p.nDenied.Add(1)
	p.writeAudit(rec)
	cc.SetWriteDeadline(time.Now().Add(p.lim.HeaderTimeout.D()))
	p.writeText(cc, status, "docker bottle egress proxy: "+what+".\n", nil, false)
	return nil, false
}

// handleProxyRequest handles a request from a client of the proxy: CONNECT
// or an absolute-URI http request. It reports whether the connection can
// carry another request.
func (p *Proxy) handleProxyRequest(ctx context.Context, cc *clientConn, req *http.Request) bool {
	start := time.Now()
	rec := p.newRecord(cc, start)
	rec.Method = req.Method
	if !p.authorized(req) {
		// A connection that keeps failing is closed: pipelined requests
		// without the token would otherwise cost the agent nothing.
		cc.authFailures++
		rec.Decision, rec.Reason, rec.Status = "deny", "missing or wrong proxy token", http.StatusProxyAuthRequired
		return p.refuseRequest(cc, req, rec, "docker bottle egress proxy: this proxy needs the bottle's token (Proxy-Authorization: Basic, any user name, the token as password).\n",
			http.Header{"Proxy-Authenticate": {`Basic realm="docker bottle"`}}, cc.authFailures < p.lim.MaxAuthFailures)
	}
	if req.Method == http.MethodConnect {
		return p.handleConnect(ctx, cc, req, rec)
	}
	if req.URL.Scheme != "http" || req.URL.Host == "" {
		rec.Decision, rec.Status = "deny", http.StatusBadRequest
		rec.Reason = "not a proxy request"
		if req.URL.Scheme == "https" {
			rec.Reason = "https URL sent to the proxy in the clear"
		}
		p.refuse(cc, rec, "docker bottle egress proxy: send absolute http:// URLs or use CONNECT (https goes through CONNECT).\n", nil)
		return false
	}
	host, port, err := splitTarget(req.URL.Host, 80)
	if err != nil {
		rec.Decision, rec.Reason, rec.Status = "deny", err.Error(), http.StatusBadRequest
		p.refuse(cc, rec, "docker bottle egress proxy: "+err.Error()+".\n", nil)
		return false
	}
	rec.Host, rec.Port = host, port
	t := &target{host: host, port: port, scheme: "http"}
	return p.forward(ctx, cc, req, t, rec)
}

// handleTunnelRequest handles one request inside an intercepted tunnel.
func (p *Proxy) handleTunnelRequest(ctx context.Context, cc *clientConn, req *http.Request, t *target) bool {
	rec := p.newRecord(cc, time.Now())
	rec.Method, rec.Host, rec.Port = req.Method, t.host, t.port
	if req.Method == http.MethodConnect {
		rec.Decision, rec.Reason, rec.Status = "deny", "CONNECT inside a tunnel", http.StatusBadRequest
		p.refuse(cc, rec, "docker bottle egress proxy: CONNECT inside a tunnel is not supported.\n", nil)
		return false
	}
	return p.forward(ctx, cc, req, t, rec)
}

func (p *Proxy) authorized(req *http.Request) bool {
	got, ok := auth.BasicPassword(req.Header.Get("Proxy-Authorization"))
	return ok && auth.Equal(got, p.token)
}

// splitTarget parses host[:port], normalising the host.
func splitTarget(hostport string, defaultPort int) (string, int, error) {
	h, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		if defaultPort == 0 {
			return "", 0, fmt.Errorf("target %q lacks a port", hostport)
		}
		h, ps = hostport, portString(defaultPort)
	}
	port := 0
	for _, c := range []byte(ps) {
		if c < '0' || c > '9' || port > 65535 {
			return "", 0, fmt.Errorf("target %q has a bad port", hostport)
		}
		port = port*10 + int(c-'0')
	}
	if port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("target %q has a bad port", hostport)
	}
	host := normHost(h)
	if host == "" {
		return "", 0, fmt.Errorf("target %q is not a valid host name", hostport)
	}
	return host, port, nil
}

// decide applies the rules and, for unlisted hosts, the approval hook.
func (p *Proxy) decide(ctx context.Context, cc *clientConn, v verdict, host string, port int, what string) verdict {
	if v.allow || v.listed {
		return v
	}
	key := fmt.Sprintf("%s:%d", host, port)
	p.approvedMu.Lock()
	always := p.approved[key]
	p.approvedMu.Unlock()
	if always {
		return verdict{allow: true, rule: "approval (always)", intercept: v.intercept}
	}
	v.reason = fmt.Sprintf("%s is not on the egress allowlist of bottle %s", key, p.bottleName())
	if !p.cfg.Approvals || p.decider == nil {
		return v
	}
	// A human is never asked about a destination the guard refuses anyway
	// (an approval opts the host in to no address class), nor about a name
	// that does not resolve: the question would only be noise, or a lure.
	if _, err := p.checkedAddrs(ctx, host, 0); err != nil {
		v.err = err
		return v
	}
	actx, cancel := context.WithTimeout(ctx, p.cfg.ApprovalTimeout.D())
	defer cancel()
	d, err := p.decider.Decide(actx, approval.Request{Kind: approval.Egress, Subject: key, Detail: what, Requester: cc.client})
	switch {
	case err == nil && d.Allowed():
		if d == approval.AllowAlways {
			p.approvedMu.Lock()
			p.approved[key] = true
			p.approvedMu.Unlock()
		}
		return verdict{allow: true, rule: "approval (" + string(d) + ")", intercept: v.intercept}
	case errors.Is(err, approval.ErrNoDecision) || actx.Err() != nil:
		v.reason += fmt.Sprintf(", and no decision came in time: no one approved it within %s", p.cfg.ApprovalTimeout.D())
	case err != nil:
		v.reason += fmt.Sprintf(", and asking for approval failed (%v)", err)
	default:
		v.reason += ", and the user denied it"
	}
	v.rule = "approval"
	return v
}

func (p *Proxy) bottleName() string {
	if p.cfg.Bottle == "" {
		return "(unnamed)"
	}
	return p.cfg.Bottle
}

// refusalText is the body of a 403: short, naming the host, saying how the
// user can allow it, for an agent to read.
func (p *Proxy) refusalText(v verdict) string {
	if !v.listed && strings.Contains(v.reason, "allowlist") {
		return "docker bottle egress proxy: " + v.reason + ".\n" +
			"To allow it, the user adds the host to the bottle's egress rules and starts the bottle again.\n"
	}
	return "docker bottle egress proxy: " + v.reason + ".\n"
}

// handleConnect decides a CONNECT and then tunnels (or intercepts) it.
func (p *Proxy) handleConnect(ctx context.Context, cc *clientConn, req *http.Request, rec *record) bool {
	host, port, err := splitTarget(req.URL.Host, 0)
	if err != nil {
		rec.Decision, rec.Reason, rec.Status = "deny", err.Error(), http.StatusBadRequest
		p.refuse(cc, rec, "docker bottle egress proxy: "+err.Error()+".\n", nil)
		return false
	}
	rec.Host, rec.Port = host, port
	v := p.decide(ctx, cc, p.pol.connect(host, port), host, port, "CONNECT "+net.JoinHostPort(host, portString(port)))
	rec.Rule = v.rule
	if v.err != nil {
		p.upstreamFailed(cc, rec, host, port, v.err)
		return false
	}
	if !v.allow {
		rec.Decision, rec.Reason, rec.Status = "deny", v.reason, http.StatusForbidden
		p.refuse(cc, rec, p.refusalText(v), nil)
		return false
	}
	select {
	case p.tunnels <- struct{}{}:
		defer func() { <-p.tunnels }()
	default:
		rec.Decision, rec.Status = "deny", http.StatusServiceUnavailable
		rec.Reason = fmt.Sprintf("too many open tunnels (limit %d)", p.lim.MaxTunnels)
		p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+"; try again later.\n", nil)
		return false
	}
	p.nTunnels.Add(1)
	defer p.nTunnels.Add(-1)
	if v.intercept {
		return p.intercept(ctx, cc, rec, &target{host: host, port: port, inner: true, approved: !v.listed})
	}
	up, err := p.dialChecked(ctx, host, port, v.reach)
	if err != nil {
		p.upstreamFailed(cc, rec, host, port, err)
		return false
	}
	defer up.Close()
	if _, err := cc.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		rec.Decision, rec.Status, rec.Reason = "allow", http.StatusOK, "client went away"
		p.writeAudit(rec)
		return false
	}
	rec.Decision, rec.Status = "allow", http.StatusOK
	upN, downN, err := p.pipe(cc.Conn, up, func(last *atomic.Int64) (int64, error) {
		return p.tunnelStart(cc, up, host, port, v.noSNI, last)
	})
	rec.BytesUp, rec.BytesDown = upN, downN
	var refused *tunnelRefused
	switch {
	case errors.As(err, &refused):
		p.nDenied.Add(1)
		rec.Decision, rec.Status, rec.Reason = "deny", http.StatusForbidden, refused.why
	case err != nil:
		rec.Reason = err.Error()
	}
	p.finish(rec)
	return false
}

// tlsPort is where a tunnel must carry TLS.
const tlsPort = 443

// tunnelRefused is a tunnel refused on its first bytes.
type tunnelRefused struct{ why string }

func (e *tunnelRefused) Error() string { return e.why }

// tunnelStart passes the first bytes of a raw tunnel to the upstream once
// they are judged: a TLS ClientHello must name host (see sniRefusal), and
// be read within the header timeout and maxHelloBytes. A tunnel to port 443
// must start with TLS. On another port a protocol that is not TLS passes as
// it is (the rule names the port), and since its server may speak first,
// the client's first byte is awaited as long as the tunnel is not idle
// (last). It returns the bytes passed on; a *tunnelRefused error once it has
// told the client why, another error when the client went away first.
func (p *Proxy) tunnelStart(cc *clientConn, up net.Conn, host string, port int, noSNI bool, last *atomic.Int64) (int64, error) {
	hdrTimeout, idle := p.lim.HeaderTimeout.D(), p.lim.IdleTimeout.D()
	var first []byte
	var err error
	for start := time.Now(); ; {
		if port == tlsPort {
			cc.SetReadDeadline(start.Add(hdrTimeout))
		} else {
			cc.SetReadDeadline(time.Now().Add(idle / 4))
		}
		first, err = cc.br.Peek(1)
		if err == nil || !isTimeout(err) || port == tlsPort || time.Since(time.Unix(0, last.Load())) >= idle {
			break
		}
	}
	switch {
	case err != nil && port == tlsPort && isTimeout(err):
		return 0, &tunnelRefused{fmt.Sprintf("the tunnel to %s:%d sent no TLS ClientHello within %s", host, port, hdrTimeout)}
	case err != nil:
		return 0, fmt.Errorf("the tunnel ended before the client sent a byte: %w", err)
	}
	var raw []byte
	isTLS := first[0] == recordHandshake
	if isTLS {
		cc.SetReadDeadline(time.Now().Add(hdrTimeout))
		var hello clientHello
		raw, hello, err = readClientHello(cc.br)
		switch {
		case errors.Is(err, errNotTLS):
			isTLS = false
		case isTimeout(err):
			return 0, &tunnelRefused{fmt.Sprintf("the tunnel to %s:%d did not complete its TLS ClientHello within %s", host, port, hdrTimeout)}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			return 0, fmt.Errorf("the tunnel ended inside the TLS ClientHello: %w", err)
		case err != nil:
			tlsAlert(cc, alertDecodeError)
			return 0, &tunnelRefused{err.Error()}
		default:
			if why := sniRefusal(hello, host, noSNI); why != "" {
				alert := byte(alertAccessDenied)
				if hello.hasSNI && !hello.ech {
					alert = alertUnrecognizedName
				}
				tlsAlert(cc, alert)
				return 0, &tunnelRefused{why}
			}
		}
	}
	if !isTLS && port == tlsPort {
		why := fmt.Sprintf("the tunnel to %s:%d carries no TLS; the bottle's egress proxy passes only TLS to port %d", host, port, tlsPort)
		// Most likely plain HTTP: say it in HTTP.
		cc.SetWriteDeadline(time.Now().Add(hdrTimeout))
		p.writeText(cc, http.StatusForbidden, "docker bottle egress proxy: "+why+".\n", nil, false)
		return 0, &tunnelRefused{why}
	}
	cc.SetReadDeadline(time.Time{})
	// Bytes the client sent behind the hello (or right behind its CONNECT)
	// are in the read buffer: pass them on before splicing the raw
	// connections.
	rest, _ := cc.br.Peek(cc.br.Buffered())
	n, err := up.Write(append(raw, rest...))
	cc.br.Discard(len(rest)) //nolint:errcheck // what Peek returned is buffered: discarding it cannot fail
	last.Store(time.Now().UnixNano())
	return int64(n), err
}

// TLS alerts (RFC 8446 6) the proxy ends a refused tunnel with: the
// client's TLS library then reports a named failure instead of a reset.
const (
	alertAccessDenied     = 49
	alertDecodeError      = 50
	alertUnrecognizedName = 112
)

func tlsAlert(c net.Conn, desc byte) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{0x15, 3, 1, 0, 2, 2, desc}) //nolint:errcheck // a courtesy before the close: the refusal stands either way
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upstreamFailed answers a failed connection to the upstream: 403 when the
// guard refused it, 504 on a timeout, 502 otherwise.
func (p *Proxy) upstreamFailed(cc *clientConn, rec *record, host string, port int, err error) {
	var ge *guardError
	var re *resolveError
	var ne net.Error
	rec.Decision = "deny"
	switch {
	case errors.As(err, &ge):
		rec.Status, rec.Reason = http.StatusForbidden, ge.Error()
		p.refuse(cc, rec, "docker bottle egress proxy: "+ge.Error()+".\n"+ge.hint(), nil)
		return
	case errors.As(err, &re):
		rec.Status, rec.Reason = http.StatusBadGateway, re.Error()
	case errors.As(err, &ne) && ne.Timeout():
		rec.Status, rec.Reason = http.StatusGatewayTimeout, fmt.Sprintf("connecting to %s:%d timed out", host, port)
	default:
		rec.Status, rec.Reason = http.StatusBadGateway, err.Error()
	}
	rec.Decision = "error"
	p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil)
}

// refuse writes a plain-text response, counts the refusal and writes the
// audit line.
func (p *Proxy) refuse(cc *clientConn, rec *record, body string, h http.Header) {
	p.nDenied.Add(1)
	p.writeText(cc, rec.Status, body, h, false)
	p.finish(rec)
}

// refuseRequest refuses req and reports whether the connection can carry
// another request: it can when the request's body could be read off it,
// and mayKeep. Either way the body is read first (bounded), so that closing
// does not reset the connection before the client reads the refusal.
func (p *Proxy) refuseRequest(cc *clientConn, req *http.Request, rec *record, body string, h http.Header, mayKeep bool) bool {
	cc.SetReadDeadline(time.Now().Add(p.lim.HeaderTimeout.D()))
	_, err := io.CopyN(io.Discard, req.Body, 1<<20)
	cc.SetReadDeadline(time.Time{})
	keep := mayKeep && errors.Is(err, io.EOF) && !req.Close
	p.nDenied.Add(1)
	keep = p.writeText(cc, rec.Status, body, h, keep)
	p.finish(rec)
	return keep
}

// writeText writes a plain-text response and reports whether the
// connection can carry another request: when keep asks it to and the
// response was delivered (after a failed write the client's replies would
// be lost).
func (p *Proxy) writeText(cc *clientConn, status int, body string, h http.Header, keep bool) bool {
	fmt.Fprintf(cc.bw, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(cc.bw, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(cc.bw, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n", len(body))
	if !keep {
		cc.bw.WriteString("Connection: close\r\n")
	}
	cc.bw.WriteString("\r\n" + body)
	return cc.bw.Flush() == nil && keep
}

// pipe copies both ways between the client and the upstream until both
// directions end, half-closing as each does, and returns the bytes sent up
// and down. The upstream's bytes flow from the start; the client's only
// after start has judged (and passed on) its first ones. When start fails,
// pipe closes both ends and returns its error.
func (p *Proxy) pipe(client, up net.Conn, start func(last *atomic.Int64) (int64, error)) (upN, downN int64, err error) {
	client.SetDeadline(time.Time{})
	var last atomic.Int64 // unix nanoseconds of the last progress either way
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		downN, err = p.copyIdle(client, up, &last)
		if err != nil {
			client.Close()
			up.Close()
			return
		}
		closeWrite(client)
	}()
	if upN, err = start(&last); err != nil {
		client.Close()
		up.Close()
		<-done
		return upN, downN, err
	}
	n, err := p.copyIdle(up, client, &last)
	upN += n
	if err != nil {
		client.Close()
		up.Close()
	} else {
		closeWrite(up)
	}
	<-done
	return upN, downN, nil
}

// tunnelChunk is how much one splice call may move before the idle deadline
// is pushed back.
const tunnelChunk = 4 << 20

// copyIdle copies src to dst until EOF, failing when no byte moved either
// way (last) for the idle timeout. It hands dst a limited reader over src so
// that TCP to TCP stays in the kernel (splice). A splice reports its bytes
// only when it returns, so each round is bounded by a deadline of a quarter
// of the idle timeout: progress either way is then seen in last at most that
// late, and a tunnel is closed only after most of the idle timeout passed
// without traffic.
func (p *Proxy) copyIdle(dst, src net.Conn, last *atomic.Int64) (int64, error) {
	idle := p.lim.IdleTimeout.D()
	round := idle / 4
	var total int64
	lr := &io.LimitedReader{R: src}
	for {
		now := time.Now()
		src.SetReadDeadline(now.Add(round))
		// The write deadline is the whole idle timeout, never the round's:
		// a splice that fails on its write side drops the bytes it holds,
		// so a write timeout must end the tunnel, and only a stalled peer
		// may cause one.
		writeDeadline := now.Add(idle)
		dst.SetWriteDeadline(writeDeadline)
		lr.N = tunnelChunk
		n, err := io.Copy(dst, lr)
		total += n
		if n > 0 {
			last.Store(time.Now().UnixNano())
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(writeDeadline) &&
				time.Since(time.Unix(0, last.Load())) < idle {
				continue // the round ended; the tunnel is not idle
			}
			return total, err
		}
		if lr.N > 0 {
			return total, nil // src reached EOF
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() //nolint:errcheck // if the half-close fails, the peer sees the full close when the pipe ends
		return
	}
	c.Close()
}
