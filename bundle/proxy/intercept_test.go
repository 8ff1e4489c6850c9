package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/pki"
)

const (
	secretValue = "sk-live-9d8c7b6a5f4e3d2c1b0a"
	placeholder = "BOTTLE_PLACEHOLDER_KEY"
)

// upstreamSeen records what reached a test upstream.
type upstreamSeen struct {
	mu   sync.Mutex
	reqs []seenRequest
}

type seenRequest struct {
	method, path, host string
	header             http.Header
}

func (u *upstreamSeen) add(r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Clone()})
	u.mu.Unlock()
}

func (u *upstreamSeen) last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstreamSeen) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// interceptEnv is an intercepting proxy in front of a local TLS upstream
// whose certificate names api.example.test and friends, signed by an
// "upstream CA" the proxy trusts through its extra CA file. The agent's
// client trusts only the bottle CA.
type interceptEnv struct {
	tp       *testProxy
	up       *httptest.Server
	seen     *upstreamSeen
	port     int
	bottleCA *x509.CertPool
	upCA     *x509.CertPool

	mu     sync.Mutex
	hellos []string // the server names of the TLS handshakes the upstream saw
}

func (e *interceptEnv) helloNames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hellos...)
}

func newInterceptEnv(t testing.TB, mutate func(*Config)) *interceptEnv {
	t.Helper()
	dir := t.TempDir()
	bottleCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "bottle-ca"))
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "upstream-ca"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := pki.NewMinter(upCA, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := &upstreamSeen{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bytes" {
			serveBytes(w, r)
			return
		}
		seen.add(r)
		// An upstream that echoes credentials back in a header.
		w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "text/plain")
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s ok, %d bytes in", r.Method, r.URL.Path, len(body))
	}))
	e := &interceptEnv{up: up, seen: seen}
	up.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		e.mu.Lock()
		e.hellos = append(e.hellos, hello.ServerName)
		e.mu.Unlock()
		if hello.ServerName == "" {
			return m.Leaf("nosni.example.test") // a front end's default
		}
		return m.Leaf(hello.ServerName)
	}}
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the negative test's handshake failures
	up.StartTLS()
	t.Cleanup(up.Close)
	_, port := hostPortOf(t, up.URL)

	secretFile := writeFile(t, dir, "secret-api", secretValue+"\n")
	phFile := writeFile(t, dir, "secret-ph", secretValue+"\n")
	cfg := Config{
		CACertFile:  filepath.Join(dir, "bottle-ca", pki.CertFile),
		CAKeyFile:   filepath.Join(dir, "bottle-ca", pki.KeyFile),
		ExtraCAFile: writeFile(t, dir, "extra-ca.pem", string(upCA.CertPEM())),
		Rules: []Rule{
			{Host: "api.example.test", Ports: []int{port}, Loopback: true},
			{Host: "ph.example.test", Ports: []int{port}, Loopback: true},
			{Host: "plain.example.test", Ports: []int{port}, Loopback: true},
			{Host: "narrow.example.test", Ports: []int{port}, Loopback: true, Methods: []string{"GET"}, Paths: []string{"/v1/*", "/health"}},
			{Host: "nodelete.example.test", Ports: []int{port}, Loopback: true},
			{Host: "nodelete.example.test", Ports: []int{port}, Deny: true, Methods: []string{"DELETE"}},
		},
		Secrets: []Secret{
			{Host: "api.example.test", Header: "Authorization", Format: "Bearer {value}", ValueFile: secretFile},
			{Host: "ph.example.test", Header: "X-Api-Key", Placeholder: placeholder, ValueFile: phFile},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	res := loopbackResolver("api.example.test", "ph.example.test", "plain.example.test", "narrow.example.test", "nodelete.example.test", "ws.example.test", "nosni.example.test")
	tp := startProxy(t, cfg, WithResolver(res))
	bp := x509.NewCertPool()
	bp.AddCert(bottleCA.Certificate())
	upPool := x509.NewCertPool()
	upPool.AddCert(upCA.Certificate())
	e.tp, e.port, e.bottleCA, e.upCA = tp, port, bp, upPool
	return e
}

// serveBytes answers /bytes?n=N with N bytes (benchmarks).
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	w.Header().Set("Content-Length", strconv.Itoa(n))
	buf := make([]byte, 256<<10)
	for n > 0 {
		k, err := w.Write(buf[:min(n, len(buf))])
		if err != nil {
			return
		}
		n -= k
	}
}

func (e *interceptEnv) url(host, path string) string {
	return fmt.Sprintf("https://%s:%d%s", host, e.port, path)
}

func do(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("payload"))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func dumpResponse(resp *http.Response, body string) string {
	var b strings.Builder
	resp.Header.Write(&b)
	return b.String() + body
}

func TestInterceptionAddsSecretOnlyUpstream(t *testing.T) {
	e := newInterceptEnv(t, nil)
	c := e.tp.client(e.bottleCA) // the agent trusts the bottle CA only

	// The agent's own Authorization is replaced, not passed on.
	resp, body := do(t, c, "POST", e.url("api.example.test", "/v1/messages?beta=1"), http.Header{"Authorization": {"Bearer agent-made-up"}})
	if resp.StatusCode != 200 || body != "POST /v1/messages ok, 7 bytes in" {
		t.Fatalf("intercepted POST: %d %q", resp.StatusCode, body)
	}
	got := e.seen.last(t)
	if got.header.Get("Authorization") != "Bearer "+secretValue {
		t.Errorf("upstream got Authorization %q, want the secret", got.header.Get("Authorization"))
	}
	if got.header.Get("Proxy-Authorization") != "" {
		t.Error("upstream got the bottle's proxy token")
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != e.tp.p.minter.CA().Certificate().Subject.CommonName {
		t.Error("the agent's TLS peer is not a leaf of the bottle CA")
	}
	if strings.Contains(dumpResponse(resp, body), secretValue) {
		t.Errorf("the secret reached the client: %s", dumpResponse(resp, body))
	}
	if !strings.Contains(resp.Header.Get("X-Echo-Authorization"), "[redacted by docker bottle]") {
		t.Errorf("echoed credential header = %q, want it redacted", resp.Header.Get("X-Echo-Authorization"))
	}

	// Placeholder replacement, in the named header only.
	resp, body = do(t, c, "GET", e.url("ph.example.test", "/x"), http.Header{
		"X-Api-Key": {placeholder}, "X-Other": {placeholder},
	})
	if resp.StatusCode != 200 {
		t.Fatalf("placeholder GET: %d %q", resp.StatusCode, body)
	}
	got = e.seen.last(t)
	if got.header.Get("X-Api-Key") != secretValue || got.header.Get("X-Other") != placeholder {
		t.Errorf("upstream got X-Api-Key %q X-Other %q; want the secret in the first only", got.header.Get("X-Api-Key"), got.header.Get("X-Other"))
	}
	if got.header.Get("Authorization") != "" {
		t.Error("the api host's secret was sent to another host")
	}
	if strings.Contains(dumpResponse(resp, body), secretValue) {
		t.Error("the secret reached the client")
	}

	// A host without secrets or method rules is tunnelled untouched: only a
	// client trusting the upstream's own CA gets through, and nothing is added.
	plain := e.tp.client(e.upCA)
	resp, _ = do(t, plain, "GET", e.url("plain.example.test", "/p"), nil)
	if resp.StatusCode != 200 || e.seen.last(t).header.Get("Authorization") != "" {
		t.Errorf("untouched tunnel: %d, Authorization %q", resp.StatusCode, e.seen.last(t).header.Get("Authorization"))
	}
	if _, err := e.tp.client(e.bottleCA).Get(e.url("plain.example.test", "/p")); err == nil {
		t.Error("a host that is not intercepted presented a bottle CA certificate")
	}

	c.CloseIdleConnections()
	plain.CloseIdleConnections()
	l := e.tp.waitAudit(map[string]any{"method": "POST", "host": "api.example.test", "decision": "allow"})
	if l["path"] != "/v1/messages" || l["status"].(float64) != 200 || l["bytes_up"].(float64) != 7 {
		t.Errorf("audit line of the intercepted POST: %v", l)
	}
	e.tp.waitAudit(map[string]any{"method": "CONNECT", "host": "api.example.test", "reason": "intercepted"})

	// The secret is in no audit line and no log line.
	raw, _ := os.ReadFile(e.tp.audit)
	if strings.Contains(string(raw), secretValue) {
		t.Error("the secret is in the audit file")
	}
	if strings.Contains(e.tp.logs.String(), secretValue) {
		t.Error("the secret is in the log")
	}
}

func TestInterceptionMethodAndPathRules(t *testing.T) {
	e := newInterceptEnv(t, nil)
	c := e.tp.client(e.bottleCA)
	for _, tc := range []struct {
		method, host, path string
		status             int
	}{
		{"GET", "narrow.example.test", "/v1/repos", 200},
		{"GET", "narrow.example.test", "/health", 200},
		{"POST", "narrow.example.test", "/v1/repos", 403},
		{"GET", "narrow.example.test", "/v2/repos", 403},
		{"GET", "narrow.example.test", "/healthz", 403},
		{"GET", "nodelete.example.test", "/a", 200},
		{"DELETE", "nodelete.example.test", "/a", 403},
	} {
		before := e.seen.count()
		resp, body := do(t, c, tc.method, e.url(tc.host, tc.path), nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s%s: %d %q, want %d", tc.method, tc.host, tc.path, resp.StatusCode, body, tc.status)
		}
		if tc.status == 403 {
			if e.seen.count() != before {
				t.Errorf("%s %s%s reached the upstream", tc.method, tc.host, tc.path)
			}
			if !strings.Contains(body, tc.host) {
				t.Errorf("refusal %q does not name the host", body)
			}
		}
	}
	// A path with dot segments cannot ride on an allowed prefix. Clients
	// clean paths, so this one is written by hand inside the tunnel.
	conn := tlsTunnel(t, e, "narrow.example.test")
	fmt.Fprintf(conn, "GET /v1/../admin HTTP/1.1\r\nHost: narrow.example.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Errorf("GET /v1/../admin: %d, want 403", resp.StatusCode)
	}
	c.CloseIdleConnections()
	e.tp.waitAudit(map[string]any{"method": "DELETE", "host": "nodelete.example.test", "decision": "deny", "status": 403, "rule": "rules[5] nodelete.example.test"})
}

// tlsTunnel opens an intercepted tunnel by hand and returns the agent's TLS
// side.
func tlsTunnel(t *testing.T, e *interceptEnv, host string) *tls.Conn {
	t.Helper()
	resp, _, conn := e.tp.raw(connectReq(fmt.Sprintf("%s:%d", host, e.port), testToken))
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %d", host, resp.StatusCode)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: e.bottleCA})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the tunnel to %s: %v", host, err)
	}
	return tc
}

func TestInterceptionRefusesUntrustedUpstream(t *testing.T) {
	// Without the extra CA, the upstream's certificate is not trusted: the
	// proxy refuses to send the secret and says why.
	e := newInterceptEnv(t, func(c *Config) { c.ExtraCAFile = "" })
	resp, body := do(t, e.tp.client(e.bottleCA), "GET", e.url("api.example.test", "/"), nil)
	if resp.StatusCode != 502 || !strings.Contains(body, "not trusted") || !strings.Contains(body, "extra CA") {
		t.Errorf("untrusted upstream: %d %q", resp.StatusCode, body)
	}
	if e.seen.count() != 0 {
		t.Error("a request reached an upstream whose certificate failed verification")
	}
}

func TestInterceptionOfPlainHTTPInTunnel(t *testing.T) {
	// A CONNECT to an intercepted host that carries plain HTTP is read as
	// HTTP; the secret is not sent in the clear.
	seen := &upstreamSeen{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		io.WriteString(w, "plain")
	}))
	defer up.Close()
	_, port := hostPortOf(t, up.URL)
	dir := t.TempDir()
	if _, err := pki.LoadOrCreateCA(dir); err != nil {
		t.Fatal(err)
	}
	tp := startProxy(t, Config{
		CACertFile: filepath.Join(dir, pki.CertFile), CAKeyFile: filepath.Join(dir, pki.KeyFile),
		Rules:   []Rule{{Host: "api.example.test", Ports: []int{port}, Loopback: true}},
		Secrets: []Secret{{Host: "api.example.test", Header: "Authorization", ValueFile: writeFile(t, dir, "s", secretValue)}},
	}, WithResolver(loopbackResolver("api.example.test")))
	resp, _, conn := tp.raw(connectReq(fmt.Sprintf("api.example.test:%d", port), testToken))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	fmt.Fprintf(conn, "GET /in-clear HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	r2, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || r2.StatusCode != 200 {
		t.Fatalf("plain HTTP in an intercepted tunnel: %v %v", r2, err)
	}
	if got := seen.last(t); got.path != "/in-clear" || got.header.Get("Authorization") != "" {
		t.Errorf("upstream saw %s with Authorization %q; the secret must not go out in the clear", got.path, got.header.Get("Authorization"))
	}
}

// TestInterceptionRefusesAmbiguousPathsAndMethodOverrides writes requests by
// hand inside an intercepted tunnel (clients would clean these paths) to a
// real TLS upstream: none that an upstream could read as another path or
// another method than the rules saw reaches it.
func TestInterceptionRefusesAmbiguousPathsAndMethodOverrides(t *testing.T) {
	e := newInterceptEnv(t, nil)
	for _, c := range []struct {
		host, line, header, want string
	}{
		{"narrow.example.test", "GET /v1/..;/admin", "", `holds ";"`},
		{"narrow.example.test", "GET /v1/x;jsessionid=1", "", `holds ";"`},
		{"narrow.example.test", "GET /v1/..%3b/admin", "", `holds ";"`},
		{"narrow.example.test", `GET /v1/..\admin`, "", "backslash"},
		{"narrow.example.test", "GET /v1/..%5cadmin", "", "backslash"},
		{"narrow.example.test", "GET /v1/..%5Cadmin", "", "backslash"},
		{"narrow.example.test", "GET /v1/a%2fb", "", "encoded slash"},
		{"narrow.example.test", "GET /v1/..%2Fadmin", "", "encoded slash"},
		{"narrow.example.test", "GET /v1/%252e%252e/admin", "", "encoded twice"},
		{"narrow.example.test", "GET /v1/%00x", "", "control characters"},
		{"narrow.example.test", "GET /v1/%c0%af", "", "not UTF-8"},
		{"narrow.example.test", "GET /v1/x", "X-HTTP-Method-Override: DELETE", "header X-Http-Method-Override"},
		{"narrow.example.test", "GET /v1/x", "X-HTTP-Method: DELETE", "header X-Http-Method"},
		{"narrow.example.test", "GET /v1/x", "X-Method-Override: PUT", "header X-Method-Override"},
		{"narrow.example.test", "GET /v1/x?_method=DELETE", "", "query parameter _method"},
		{"nodelete.example.test", "GET /a", "X-HTTP-Method-Override: DELETE", "header X-Http-Method-Override"},
		{"nodelete.example.test", "delete /a", "", "refused by egress rule rules[5]"},
		{"nodelete.example.test", "Delete /a", "", "refused by egress rule rules[5]"},
	} {
		conn := tlsTunnel(t, e, c.host)
		before := e.seen.count()
		req := c.line + " HTTP/1.1\r\nHost: " + c.host + "\r\n"
		if c.header != "" {
			req += c.header + "\r\n"
		}
		io.WriteString(conn, req+"\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", c.host, c.line, err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %q %q: %d %q, want 403 saying %q", c.host, c.line, c.header, resp.StatusCode, body, c.want)
		}
		if e.seen.count() != before {
			t.Errorf("%s %q %q reached the upstream", c.host, c.line, c.header)
		}
	}
	// Plain paths and methods still pass, with percent-encoding of ordinary
	// characters, and an override header on a host without method rules.
	for _, c := range []struct{ host, line, header string }{
		{"narrow.example.test", "GET /v1/a%20b", ""},
		{"narrow.example.test", "GET /v1/%61dmin", ""},
		{"plain.example.test", "POST /x;y", "X-HTTP-Method-Override: DELETE"},
	} {
		c2 := e.tp.client(e.bottleCA)
		if c.host == "plain.example.test" {
			// plain.example.test is not intercepted: its tunnel is raw.
			c2 = e.tp.client(e.upCA)
		}
		req, _ := http.NewRequest(strings.Fields(c.line)[0], e.url(c.host, ""), nil)
		req.URL.Opaque = "//" + c.host + ":" + strconv.Itoa(e.port) + strings.Fields(c.line)[1]
		if k, v, ok := strings.Cut(c.header, ": "); ok {
			req.Header.Set(k, v)
		}
		resp, err := c2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s %q %q: %d, want 200", c.host, c.line, c.header, resp.StatusCode)
		}
	}
}

// TestInterceptedHostsTakeWebSocketsOnlyWhenARuleOptsIn runs the upgrade
// through a real TLS upstream: hosts with secrets or method/path rules
// refuse a WebSocket unless a rule says websocket: true, and refuse h2c
// always.
func TestInterceptedHostsTakeWebSocketsOnlyWhenARuleOptsIn(t *testing.T) {
	e := newInterceptEnv(t, func(c *Config) {
		port := c.Rules[0].Ports[0]
		c.Rules = append(c.Rules, Rule{Host: "ws.example.test", Ports: []int{port}, Loopback: true, Methods: []string{"GET"}, WebSocket: true})
	})
	e.up.Config.Handler = upgradeHandler(e.seen)
	send := func(host, headers string) (*http.Response, string, net.Conn) {
		t.Helper()
		conn := tlsTunnel(t, e, host)
		io.WriteString(conn, "GET /v1/ws HTTP/1.1\r\nHost: "+host+"\r\n"+headers+"\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if resp.StatusCode == 101 {
			return resp, "", &bufferedConn{Conn: conn, r: br}
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		return resp, string(body), nil
	}
	const ws = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
	for _, c := range []struct{ host, headers, want string }{
		{"narrow.example.test", ws, "websocket: true"},
		{"api.example.test", ws, "websocket: true"},
		{"ws.example.test", "Connection: Upgrade\r\nUpgrade: h2c\r\n", "Upgrade: h2c is refused"},
	} {
		before := e.seen.count()
		resp, body, _ := send(c.host, c.headers)
		if resp.StatusCode != 403 || !strings.Contains(body, c.want) {
			t.Errorf("%s %q: %d %q, want 403 saying %q", c.host, c.headers, resp.StatusCode, body, c.want)
		}
		if e.seen.count() != before {
			t.Errorf("%s %q reached the upstream", c.host, c.headers)
		}
	}
	resp, _, conn := send("ws.example.test", ws)
	if resp.StatusCode != 101 {
		t.Fatalf("WebSocket to a host whose rule opts in: %d", resp.StatusCode)
	}
	defer conn.Close()
	io.WriteString(conn, "frame")
	b := make([]byte, 5)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "frame" {
		t.Errorf("echo through the WebSocket: %q %v", b, err)
	}
}

// TestRawTunnelChecksTheClientHello runs raw (not intercepted) tunnels to a
// real TLS upstream that serves any name, like a CDN's shared front end:
// only a ClientHello naming the host the CONNECT named reaches it.
func TestRawTunnelChecksTheClientHello(t *testing.T) {
	e := newInterceptEnv(t, func(c *Config) {
		c.Rules = append(c.Rules, Rule{Host: "nosni.example.test", Ports: c.Rules[0].Ports, Loopback: true, AllowNoSNI: true})
	})
	// handshake opens a tunnel to host and speaks TLS naming serverName.
	handshake := func(host, serverName string) error {
		resp, _, conn := e.tp.raw(connectReq(fmt.Sprintf("%s:%d", host, e.port), testToken))
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT %s: %d", host, resp.StatusCode)
		}
		defer conn.Close()
		cfg := &tls.Config{ServerName: serverName, RootCAs: e.upCA}
		if serverName == "" {
			cfg.InsecureSkipVerify = true // so that Go sends no name
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		fmt.Fprintf(tc, "GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
		r, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	}
	for _, c := range []struct{ host, serverName, wantErr string }{
		{"plain.example.test", "plain.example.test", ""},
		{"plain.example.test", "Plain.Example.TEST", ""},
		{"plain.example.test", "other-tenant.example.test", "unrecognized name"},
		{"plain.example.test", "nosni.example.test", "unrecognized name"},
		{"plain.example.test", "", "access denied"},
		{"nosni.example.test", "", ""},
		{"nosni.example.test", "nosni.example.test", ""},
		{"nosni.example.test", "plain.example.test", "unrecognized name"},
	} {
		err := handshake(c.host, c.serverName)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("tunnel to %s, TLS naming %q: %v, want %q", c.host, c.serverName, err, c.wantErr)
		}
	}
	for _, n := range e.helloNames() {
		if n != "plain.example.test" && n != "Plain.Example.TEST" && n != "nosni.example.test" && n != "" {
			t.Errorf("the upstream saw a ClientHello for %q", n)
		}
	}

	// Encrypted Client Hello hides the name the upstream would act on: a
	// ClientHello that carries it is refused, whatever its outer name.
	hello := editHello(t, goHello(t, "plain.example.test"), func(l []helloExt) []helloExt {
		return append(l, helloExt{extECH, []byte{0, 0, 1, 0, 1, 7, 0, 0, 0, 0}})
	})
	before := len(e.helloNames())
	resp, _, conn := e.tp.raw(connectReq(fmt.Sprintf("plain.example.test:%d", e.port), testToken))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	conn.Write(hello)
	got, _ := io.ReadAll(conn)
	if !bytes.Equal(got, []byte{0x15, 3, 1, 0, 2, 2, alertAccessDenied}) {
		t.Errorf("after an ECH ClientHello the client read %x, want an access_denied alert", got)
	}
	if len(e.helloNames()) != before {
		t.Error("an ECH ClientHello reached the upstream")
	}
	e.tp.waitAudit(map[string]any{"method": "CONNECT", "host": "plain.example.test", "decision": "deny", "status": 403,
		"reason": `the TLS ClientHello names the server "other-tenant.example.test", not plain.example.test which the CONNECT asked for and the rules allow`})
	e.tp.waitAudit(map[string]any{"method": "CONNECT", "decision": "deny", "status": 403,
		"reason": "the TLS ClientHello to plain.example.test carries Encrypted Client Hello, which hides the server it asks for; the bottle's egress proxy refuses it (turn ECH off in the client)"})
}

// TestInterceptionRefusesFormMethodOverrides: on a host with method rules, a
// POST whose form body carries a _method field (which Rack, Symfony and
// Laravel take as the method) is refused like an override header, and never
// reaches the real TLS upstream; other bodies pass whole.
func TestInterceptionRefusesFormMethodOverrides(t *testing.T) {
	e := newInterceptEnv(t, nil)
	c := e.tp.client(e.bottleCA)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("title", "x")
	mw.WriteField("_method", "DELETE")
	mw.Close()
	var mpOK bytes.Buffer
	mw2 := multipart.NewWriter(&mpOK)
	mw2.WriteField("title", "_method in a value")
	mw2.Close()
	const form = "application/x-www-form-urlencoded"
	big := "a=" + strings.Repeat("x", maxFormPeek)
	for _, tc := range []struct {
		host, ctype, body, want string // want "": passes
	}{
		{"nodelete.example.test", form, "a=1&_method=DELETE", `form field "_method"`},
		{"nodelete.example.test", form, "a=1;%5Fmethod=DELETE", `form field "_method"`},
		{"nodelete.example.test", form + "; charset=utf-8", "_METHOD=delete", `form field "_METHOD"`},
		{"nodelete.example.test", form, "_method%zz=DELETE", "form field"},
		{"nodelete.example.test", "", "_method[]=DELETE", "form field"},
		{"nodelete.example.test", "text/plain; ;;", "_method=DELETE", "form field"},
		{"nodelete.example.test", mw.FormDataContentType(), mp.String(), "form field _method"},
		{"nodelete.example.test", "multipart/form-data", mp.String(), "cannot parse"},
		{"nodelete.example.test", form, big, "over 1048576 bytes"},
		{"nodelete.example.test", form, "a=1&b=_method", ""},
		{"nodelete.example.test", mw2.FormDataContentType(), mpOK.String(), ""},
		{"nodelete.example.test", "application/json", `{"_method":"DELETE"}`, ""},
		{"nodelete.example.test", form, big[:maxFormPeek], ""},
		{"ph.example.test", form, "_method=DELETE", ""}, // no method rules
	} {
		before := e.seen.count()
		h := http.Header{}
		if tc.ctype != "" {
			h.Set("Content-Type", tc.ctype)
		}
		req, _ := http.NewRequest("POST", e.url(tc.host, "/form"), strings.NewReader(tc.body))
		req.Header = h
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %.40q: %v", tc.host, tc.body, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case tc.want != "" && (resp.StatusCode != 403 || !strings.Contains(string(got), tc.want)):
			t.Errorf("%s %q %.60q: %d %q, want 403 saying %q", tc.host, tc.ctype, tc.body, resp.StatusCode, got, tc.want)
		case tc.want != "" && e.seen.count() != before:
			t.Errorf("%s %q %.60q reached the upstream", tc.host, tc.ctype, tc.body)
		case tc.want == "" && (resp.StatusCode != 200 || string(got) != fmt.Sprintf("POST /form ok, %d bytes in", len(tc.body))):
			t.Errorf("%s %q %.60q: %d %q, want it passed whole", tc.host, tc.ctype, tc.body, resp.StatusCode, got)
		}
	}
	c.CloseIdleConnections()
	e.tp.waitAudit(map[string]any{"host": "nodelete.example.test", "path": "/form", "decision": "deny", "status": 403})
}
