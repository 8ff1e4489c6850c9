package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

const testToken = "tok-3f9a1c"

// testProxy is a proxy serving on a real loopback socket.
type testProxy struct {
	t      testing.TB
	p      *Proxy
	addr   string
	dir    string
	audit  string
	logs   *testio.Buffer
	dials  atomic.Int64
	dialed []string
	mu     sync.Mutex
}

// startProxy writes the token, points the audit at a temp file and serves
// cfg on 127.0.0.1. Every dial goes through a counting wrapper of the real
// dialer.
func startProxy(t testing.TB, cfg Config, opts ...Option) *testProxy {
	t.Helper()
	tp := &testProxy{t: t, dir: t.TempDir(), logs: &testio.Buffer{}}
	cfg.TokenFile = writeFile(t, tp.dir, "token", testToken+"\n")
	tp.audit = filepath.Join(tp.dir, "audit.jsonl")
	cfg.AuditFile = tp.audit
	if cfg.Bottle == "" {
		cfg.Bottle = "test-bottle"
	}
	base := defaultDialer(5 * time.Second)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		tp.dials.Add(1)
		tp.mu.Lock()
		tp.dialed = append(tp.dialed, addr)
		tp.mu.Unlock()
		return base(ctx, network, addr)
	}
	opts = append([]Option{WithDialer(dial), WithLogger(slog.New(slog.NewTextHandler(tp.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	p, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tp.p = p
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
		p.Close()
	})
	return tp
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (tp *testProxy) proxyURL(token string) *url.URL {
	u := &url.URL{Scheme: "http", Host: tp.addr}
	if token != "" {
		u.User = url.UserPassword("agent", token)
	}
	return u
}

// client returns an HTTP client using the proxy with the token, trusting
// only roots (nil: the system's).
func (tp *testProxy) client(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			Proxy:             http.ProxyURL(tp.proxyURL(testToken)),
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: false,
		},
	}
}

// rawResponse sends raw bytes to the proxy and reads one response.
func (tp *testProxy) raw(request string) (*http.Response, string, net.Conn) {
	tp.t.Helper()
	c, err := net.DialTimeout("tcp", tp.addr, 5*time.Second)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		tp.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	// Tell ReadResponse the method: a 200 to CONNECT has no body.
	method, _, _ := strings.Cut(request, " ")
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		tp.t.Fatalf("reading the proxy's response to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	if method == http.MethodConnect && resp.StatusCode == http.StatusOK {
		return resp, "", &bufferedConn{Conn: c, r: br} // a tunnel: the rest is its bytes
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), &bufferedConn{Conn: c, r: br}
}

type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func basic(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("agent:"+token))
}

func connectReq(hostport, token string) string {
	s := "CONNECT " + hostport + " HTTP/1.1\r\nHost: " + hostport + "\r\n"
	if token != "" {
		s += "Proxy-Authorization: " + basic(token) + "\r\n"
	}
	return s + "\r\n"
}

// auditLines parses the audit file.
func (tp *testProxy) auditLines() []map[string]any {
	tp.t.Helper()
	b, err := os.ReadFile(tp.audit)
	if err != nil {
		tp.t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tp.t.Fatalf("audit line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitAudit waits for an audit line matching all of want (the proxy writes
// a tunnel's line when the tunnel closes).
func (tp *testProxy) waitAudit(want map[string]any) map[string]any {
	tp.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, l := range tp.auditLines() {
			if matches(l, want) {
				return l
			}
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("no audit line matches %v; lines: %v", want, tp.auditLines())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countAudit counts the decisions of the audit lines matching want, a line
// that sums up repeated refusals for as many as it stands for.
func (tp *testProxy) countAudit(want map[string]any) int {
	n := 0
	for _, l := range tp.auditLines() {
		if !matches(l, want) {
			continue
		}
		n++
		if r, ok := l["repeated"].(float64); ok {
			n += int(r) - 1
		}
	}
	return n
}

func matches(l, want map[string]any) bool {
	for k, v := range want {
		got, ok := l[k]
		if !ok {
			return false
		}
		if fmt.Sprint(got) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

func hostPortOf(t testing.TB, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	h, ps, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(ps)
	return h, port
}

// mapResolver answers from a table, for names that only tests know; every
// other name fails. It counts lookups.
type mapResolver struct {
	m     map[string][]netip.Addr
	calls atomic.Int64
}

func (r *mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	if a, ok := r.m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func loopbackResolver(names ...string) *mapResolver {
	r := &mapResolver{m: map[string][]netip.Addr{}}
	for _, n := range names {
		r.m[n] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	return r
}

// echoServer accepts TCP connections on loopback and echoes them.
func echoServer(t *testing.T) (string, int) {
	t.Helper()
	addr := testio.Echo(t, "").(*net.TCPAddr)
	return "127.0.0.1", addr.Port
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func writeFileErr(p, content string) error { return os.WriteFile(p, []byte(content), 0o600) }
