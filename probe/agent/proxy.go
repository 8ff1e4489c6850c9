package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/probe"
)

// proxyBanner starts every answer the egress proxy writes itself (its
// refusals and errors), which tells them from an upstream's answers.
const proxyBanner = "docker bottle egress proxy"

// bodyExcerpt is how much of a body goes into the report.
const bodyExcerpt = 300

// proxyClient talks to the egress proxy by hand: Go's transport hides the
// body of a refused CONNECT, and the refusal's text is the evidence.
type proxyClient struct {
	proxy   *url.URL
	roots   *x509.CertPool
	caFiles []string
	caErr   error
	timeout time.Duration
}

func newProxyClient(cfg probe.Config) (*proxyClient, error) {
	pc := &proxyClient{timeout: cfg.Timeout.D()}
	pc.roots, pc.caFiles, pc.caErr = loadRoots(cfg.CAFiles)
	if cfg.Proxy == "" {
		return pc, errors.New("no proxy to ask: $HTTPS_PROXY and $HTTP_PROXY are empty and --proxy was not given")
	}
	u, err := url.Parse(cfg.Proxy)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return pc, fmt.Errorf("proxy %q: want http://HOST:PORT", cfg.Proxy)
	}
	u.User = nil // the token is added per request, never taken from the environment
	pc.proxy = u
	return pc, nil
}

// loadRoots reads the CA files that https through the proxy must verify
// against. Only these are trusted: not the system's roots, so that a
// verified connection proves the bottle's trust is what the plan says.
func loadRoots(files []string) (*x509.CertPool, []string, error) {
	pool := x509.NewCertPool()
	var used []string
	var errs []error
	for _, f := range files {
		if slices.Contains(used, f) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !pool.AppendCertsFromPEM(b) {
			errs = append(errs, fmt.Errorf("%s holds no PEM certificate", f))
			continue
		}
		used = append(used, f)
	}
	if len(used) == 0 {
		if len(errs) == 0 {
			errs = append(errs, errors.New("no CA file given ($SSL_CERT_FILE, $BOTTLE_CA_FILE, $NODE_EXTRA_CA_CERTS are empty and --ca-file was not given)"))
		}
		return nil, nil, fmt.Errorf("no CA to verify https against: %w", errors.Join(errs...))
	}
	return pool, used, nil
}

// basicToken is the Proxy-Authorization the bundle wants: any user name,
// the token as password.
func basicToken(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("bottle:"+token))
}

// fetch asks the proxy for u (CONNECT and TLS for https, an absolute-URI
// request for http) and describes what happened. An empty token sends no
// Proxy-Authorization.
func (pc *proxyClient) fetch(ctx context.Context, u *url.URL, token string) (probe.Outcome, string, probe.Evidence) {
	start := time.Now()
	ev := probe.Evidence{Proxy: pc.proxy.String()}
	out, result := pc.fetch1(ctx, u, token, &ev)
	ev.Elapsed = probe.Millis(time.Since(start))
	return out, result, ev
}

func (pc *proxyClient) fetch1(ctx context.Context, u *url.URL, token string, ev *probe.Evidence) (probe.Outcome, string) {
	ctx, cancel := context.WithTimeout(ctx, pc.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", pc.proxy.Host)
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "could not connect to the proxy at " + pc.proxy.Host + ": " + err.Error()
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if u.Scheme == "http" {
		return pc.plainHTTP(ctx, conn, u, token, ev)
	}
	return pc.tunnel(ctx, conn, u, token, ev)
}

func (pc *proxyClient) plainHTTP(ctx context.Context, conn net.Conn, u *url.URL, token string, ev *probe.Evidence) (probe.Outcome, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeError, "could not make the request: " + err.Error()
	}
	req.Close = true
	req.Header.Set("User-Agent", "docker-bottle-probe")
	if token != "" {
		req.Header.Set("Proxy-Authorization", basicToken(token))
	}
	if err := req.WriteProxy(conn); err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "sending the request to the proxy failed: " + err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "reading the answer failed: " + err.Error()
	}
	return answered(resp, ev, "GET "+u.String()+" through the proxy")
}

func (pc *proxyClient) tunnel(ctx context.Context, conn net.Conn, u *url.URL, token string, ev *probe.Evidence) (probe.Outcome, string) {
	target := hostPort(u)
	status, body, br, err := connect(conn, target, token)
	ev.ConnectStatus = status
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "CONNECT " + target + " failed: " + err.Error()
	}
	if status != http.StatusOK {
		ev.Status, ev.Body, ev.ByProxy = status, excerpt(body), true
		out := probe.OutcomeFailed
		if status == http.StatusForbidden || status == http.StatusProxyAuthRequired {
			out = probe.OutcomeRefused
		}
		return out, fmt.Sprintf("the proxy answered CONNECT %s with %d %s", target, status, http.StatusText(status))
	}
	if pc.roots == nil {
		ev.Error = pc.caErr.Error()
		return probe.OutcomeError, "the proxy opened the tunnel, but " + pc.caErr.Error()
	}
	ev.CAFiles = pc.caFiles
	tc := tls.Client(&bufferedConn{Conn: conn, r: br}, pc.tlsConfig(u.Hostname(), ev))
	if err := tc.HandshakeContext(ctx); err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "the proxy opened the tunnel, but TLS with " + target + " failed: " + err.Error()
	}
	ev.TLSVerified = true
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeError, "could not make the request: " + err.Error()
	}
	req.Close = true
	req.Header.Set("User-Agent", "docker-bottle-probe")
	if err := req.Write(tc); err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "sending the request through the tunnel failed: " + err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		ev.Error = err.Error()
		return probe.OutcomeFailed, "reading the answer through the tunnel failed: " + err.Error()
	}
	return answered(resp, ev, "GET "+u.String()+" through a CONNECT tunnel (TLS verified)")
}

// tlsConfig verifies the server against the CA files only, recording its
// certificate whether or not it verifies.
func (pc *proxyClient) tlsConfig(host string, ev *probe.Evidence) *tls.Config {
	return &tls.Config{
		ServerName: host,
		// Verification is done below, so that the leaf is recorded even
		// when it does not verify.
		InsecureSkipVerify: true, //nolint:gosec // G402: VerifyConnection below verifies against the CA files
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			ev.TLSSubject, ev.TLSIssuer = leaf.Subject.String(), leaf.Issuer.String()
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pc.roots, Intermediates: inter})
			return err
		},
	}
}

// connect sends CONNECT target on conn and reads the proxy's answer; on
// anything but 200 it reads the body too.
func connect(conn net.Conn, target, token string) (status int, body []byte, br *bufio.Reader, err error) {
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{}}
	req.Header.Set("User-Agent", "docker-bottle-probe")
	if token != "" {
		req.Header.Set("Proxy-Authorization", basicToken(token))
	}
	if err := req.Write(conn); err != nil {
		return 0, nil, nil, err
	}
	br = bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}
	return resp.StatusCode, body, br, nil
}

// answered describes a response: the proxy's own text (a refusal or an
// error) or the target's.
func answered(resp *http.Response, ev *probe.Evidence, what string) (probe.Outcome, string) {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	ev.Status, ev.Body = resp.StatusCode, excerpt(body)
	ev.ByProxy = strings.HasPrefix(string(body), proxyBanner)
	line := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	switch {
	case !ev.ByProxy:
		return probe.OutcomeOK, what + ": the target answered " + line
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusProxyAuthRequired:
		return probe.OutcomeRefused, what + ": the proxy refused it with " + line
	default:
		return probe.OutcomeFailed, what + ": the proxy answered " + line
	}
}

// excerpt keeps the first bytes of a body, printable ASCII only.
func excerpt(b []byte) string {
	if len(b) > bodyExcerpt {
		b = b[:bodyExcerpt]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f):
			out[i] = c
		default:
			out[i] = '.'
		}
	}
	return strings.TrimSpace(string(out))
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

// bufferedConn reads what the CONNECT reader buffered before the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// proxyCheck is one allowed or unlisted URL.
func (pc *proxyClient) check(ctx context.Context, kind probe.Kind, raw, token string) probe.Check {
	c := probe.Check{Kind: kind, Target: raw, Tried: "GET " + raw + " through the egress proxy with the bottle's token"}
	u, err := url.Parse(raw)
	if err != nil {
		c.Outcome, c.Result = probe.OutcomeError, "bad URL: "+err.Error()
		return c
	}
	c.Outcome, c.Result, c.Evidence = pc.fetch(ctx, u, token)
	return c
}

// noToken asks the proxy for a tunnel without the token: it must answer 407.
func (pc *proxyClient) noToken(ctx context.Context, target string) probe.Check {
	c := probe.Check{Kind: probe.KindProxyNoToken, Target: target,
		Tried: "CONNECT " + target + " through the egress proxy without a token"}
	ctx, cancel := context.WithTimeout(ctx, pc.timeout)
	defer cancel()
	start := time.Now()
	c.Evidence.Proxy = pc.proxy.String()
	defer func() { c.Evidence.Elapsed = probe.Millis(time.Since(start)) }()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", pc.proxy.Host)
	if err != nil {
		c.Outcome, c.Result, c.Evidence.Error = probe.OutcomeFailed, "could not connect to the proxy: "+err.Error(), err.Error()
		return c
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	status, body, _, err := connect(conn, target, "")
	if err != nil {
		c.Outcome, c.Result, c.Evidence.Error = probe.OutcomeFailed, "CONNECT failed: "+err.Error(), err.Error()
		return c
	}
	c.Evidence.ConnectStatus, c.Evidence.Status, c.Evidence.Body = status, status, excerpt(body)
	c.Evidence.ByProxy = status != http.StatusOK
	line := fmt.Sprintf("%d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusOK:
		c.Outcome, c.Result = probe.OutcomeOK, "the proxy opened a tunnel without any token"
	case status >= 400 && status < 500:
		c.Outcome, c.Result = probe.OutcomeRefused, "the proxy answered "+line
	default:
		c.Outcome, c.Result = probe.OutcomeFailed, "the proxy answered "+line
	}
	return c
}
