package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

func TestHTTPAllowedAndDenied(t *testing.T) {
	var sawProxyAuth atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			sawProxyAuth.Store(true)
		}
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer up.Close()
	_, port := hostPortOf(t, up.URL)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a denied request reached its upstream")
	}))
	defer other.Close()

	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})
	c := tp.client(nil)

	for range 2 { // twice: the second request rides the kept-alive connection
		resp, err := c.Get(up.URL + "/a/b?q=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello from /a/b" {
			t.Fatalf("allowed GET: %d %q", resp.StatusCode, body)
		}
	}
	if sawProxyAuth.Load() {
		t.Error("the proxy passed Proxy-Authorization (the bottle's token) to the upstream")
	}

	resp, err := c.Get(other.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, otherPort := hostPortOf(t, other.URL)
	wantHost := fmt.Sprintf("127.0.0.1:%d", otherPort)
	if resp.StatusCode != 403 || !strings.Contains(string(body), wantHost) || !strings.Contains(string(body), "not on the egress allowlist") {
		t.Errorf("denied GET: %d %q, want 403 naming %s and the allowlist", resp.StatusCode, body, wantHost)
	}

	l := tp.waitAudit(map[string]any{"method": "GET", "port": port, "decision": "allow", "status": 200})
	if l["path"] != "/a/b" || l["bottle"] != "test-bottle" || l["rule"] != "rules[0] 127.0.0.1" {
		t.Errorf("audit line of the allowed GET: %v", l)
	}
	if l["bytes_down"].(float64) != float64(len("hello from /a/b")) {
		t.Errorf("audit bytes_down = %v, want %d", l["bytes_down"], len("hello from /a/b"))
	}
	for _, k := range []string{"time", "client", "host", "duration_ms", "bytes_up"} {
		if _, ok := l[k]; !ok {
			t.Errorf("audit line lacks %q: %v", k, l)
		}
	}
	tp.waitAudit(map[string]any{"method": "GET", "port": otherPort, "decision": "deny", "status": 403})
}

func TestConnectAllowedAndDenied(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	defer up.Close()
	_, port := hostPortOf(t, up.URL)
	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})

	// The tunnel is untouched: the client verifies the upstream's own
	// certificate.
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	c := tp.client(pool)
	resp, err := c.Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections() // ends the tunnel, which writes its audit line
	if string(body) != "tls ok" {
		t.Fatalf("through the tunnel: %q", body)
	}
	l := tp.waitAudit(map[string]any{"method": "CONNECT", "decision": "allow"})
	if l["bytes_up"].(float64) == 0 || l["bytes_down"].(float64) == 0 || l["status"].(float64) != 200 {
		t.Errorf("tunnel audit line: %v", l)
	}
	if _, ok := l["path"]; ok {
		t.Errorf("a tunnel that is not intercepted has no path to log: %v", l)
	}

	// A refused CONNECT is answered before any tunnel, with a body that
	// names the host.
	resp, body2, conn := tp.raw(connectReq("127.0.0.1:1", testToken))
	if resp.StatusCode != 403 || !strings.Contains(body2, "127.0.0.1:1 is not on the egress allowlist of bottle test-bottle") {
		t.Errorf("denied CONNECT: %d %q", resp.StatusCode, body2)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("after a refused CONNECT the connection should close, got n=%d err=%v", n, err)
	}
}

func TestConnectForwardsBytesSentBehindTheRequest(t *testing.T) {
	host, port := echoServer(t)
	tp := startProxy(t, Config{Rules: []Rule{{Host: host, Ports: []int{port}, Loopback: true}}})
	hp := fmt.Sprintf("%s:%d", host, port)
	// One write: the CONNECT and the first tunnel bytes together, as
	// clients that pipeline their TLS hello do.
	resp, _, conn := tp.raw(connectReq(hp, testToken) + "early-bytes")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	buf := make([]byte, len("early-bytes"))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "early-bytes" {
		t.Fatalf("echo of the pipelined bytes: %q %v", buf, err)
	}
	io.WriteString(conn, "more")
	if _, err := io.ReadFull(conn, buf[:4]); err != nil || string(buf[:4]) != "more" {
		t.Fatalf("echo: %q %v", buf[:4], err)
	}
	// Half-close: the echo server sees EOF, closes, and the tunnel ends.
	conn.(*bufferedConn).Conn.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
		t.Errorf("after half-close: %q %v", b, err)
	}
	l := tp.waitAudit(map[string]any{"method": "CONNECT", "decision": "allow"})
	if l["bytes_up"].(float64) != 15 || l["bytes_down"].(float64) != 15 {
		t.Errorf("tunnel bytes up/down = %v/%v, want 15/15", l["bytes_up"], l["bytes_down"])
	}
}

func TestProxyAuthentication(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("an unauthenticated request reached the upstream")
	}))
	defer up.Close()
	_, port := hostPortOf(t, up.URL)
	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})
	hp := fmt.Sprintf("127.0.0.1:%d", port)
	for name, req := range map[string]string{
		"CONNECT without token":    connectReq(hp, ""),
		"CONNECT with wrong token": connectReq(hp, "wrong"),
		"GET without token":        "GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\n\r\n",
		"GET with wrong token":     "GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nProxy-Authorization: " + basic(testToken+"x") + "\r\n\r\n",
		"GET with bearer token":    "GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nProxy-Authorization: Bearer " + testToken + "\r\n\r\n",
	} {
		resp, body, _ := tp.raw(req)
		if resp.StatusCode != http.StatusProxyAuthRequired || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Basic") {
			t.Errorf("%s: %d %v, want 407 with a Basic challenge", name, resp.StatusCode, resp.Header)
		}
		if !strings.Contains(body, "token") {
			t.Errorf("%s: body %q does not say a token is needed", name, body)
		}
	}
	if n := tp.dials.Load(); n != 0 {
		t.Errorf("unauthenticated requests caused %d dials", n)
	}
	tp.waitAudit(map[string]any{"status": 407, "decision": "deny", "reason": "missing or wrong proxy token"})
}

func TestWildcardPortAndDenyRules(t *testing.T) {
	host, port := echoServer(t)
	_ = host
	res := loopbackResolver("api.example.test", "deep.api.example.test", "example.test", "bad.example.test", "other.test")
	tp := startProxy(t, Config{Rules: []Rule{
		{Host: "*.example.test", Ports: []int{port}, Loopback: true},
		{Host: "bad.example.test", Deny: true, Ports: []int{port}},
		{Host: "other.test", Loopback: true}, // default ports only
	}}, WithResolver(res))
	for _, c := range []struct {
		target string
		status int
		body   string
	}{
		{fmt.Sprintf("api.example.test:%d", port), 200, ""},
		{fmt.Sprintf("DEEP.api.example.test.:%d", port), 200, ""},
		{fmt.Sprintf("example.test:%d", port), 403, "not on the egress allowlist"},
		{fmt.Sprintf("bad.example.test:%d", port), 403, "refused by egress rule rules[1] bad.example.test"},
		{fmt.Sprintf("api.example.test:%d", port+1), 403, "not on the egress allowlist"},
		{fmt.Sprintf("other.test:%d", port), 403, "not on the egress allowlist"},
		{"evilexample.test:443", 403, "not on the egress allowlist"},
	} {
		resp, body, conn := tp.raw(connectReq(c.target, testToken))
		if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
			t.Errorf("CONNECT %s: %d %q, want %d %q", c.target, resp.StatusCode, body, c.status, c.body)
		}
		if resp.StatusCode == 200 {
			io.WriteString(conn, "ping")
			b := make([]byte, 4)
			if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
				t.Errorf("CONNECT %s: echo %q %v", c.target, b, err)
			}
		}
	}
	// The default ports of a rule are 443 and 80.
	pol := compilePolicy(Config{Rules: []Rule{{Host: "other.test"}}}, nil)
	for port, want := range map[int]bool{443: true, 80: true, 8443: false, 22: false} {
		if got := pol.connect("other.test", port).allow; got != want {
			t.Errorf("rule without ports, port %d: allow=%v, want %v", port, got, want)
		}
	}
}

func TestDestinationGuard(t *testing.T) {
	// A real service on loopback that the guard must keep the bottle from.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	tp := startProxy(t, Config{Rules: []Rule{
		{Host: "localhost", Ports: []int{port, 80}},
		{Host: "169.254.169.254", Ports: []int{80, 443}},
		{Host: "10.1.2.3", Ports: []int{443}},
		{Host: "::ffff:127.0.0.1", Ports: []int{443}},
	}}) // the system resolver: localhost is 127.0.0.1 (and ::1)

	for _, c := range []struct{ req, want, opt string }{
		{connectReq(fmt.Sprintf("localhost:%d", port), testToken), "localhost resolves to", "loopback: true"},
		{connectReq("169.254.169.254:443", testToken), "169.254.169.254 is a link-local (cloud metadata) address", "metadata: true"},
		{"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nProxy-Authorization: " + basic(testToken) + "\r\n\r\n", "link-local", "metadata: true"},
		{"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\nProxy-Authorization: " + basic(testToken) + "\r\n\r\n", "loopback", "loopback: true"},
		{connectReq("10.1.2.3:443", testToken), "10.1.2.3 is a private address", "private: true"},
		{connectReq("[::ffff:127.0.0.1]:443", testToken), "127.0.0.1 is a loopback address", "loopback: true"},
	} {
		resp, body, _ := tp.raw(c.req)
		if resp.StatusCode != 403 || !strings.Contains(body, c.want) || !strings.Contains(body, c.opt) {
			t.Errorf("%q: %d %q, want 403 saying %q and how to opt in (%s)", strings.SplitN(c.req, "\r\n", 2)[0], resp.StatusCode, body, c.want, c.opt)
		}
	}
	if n := tp.dials.Load(); n != 0 {
		t.Errorf("the guard let %d dials through (%v)", n, tp.dialed)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the loopback service accepted %d connections", n)
	}
	tp.waitAudit(map[string]any{"host": "169.254.169.254", "decision": "deny", "status": 403})

	// With loopback: true the same name is reached, at the address checked.
	tp2 := startProxy(t, Config{Rules: []Rule{{Host: "localhost", Ports: []int{port}, Loopback: true}}})
	resp, _, _ := tp2.raw(connectReq(fmt.Sprintf("localhost:%d", port), testToken))
	if resp.StatusCode != 200 {
		t.Errorf("localhost with loopback: true: %d", resp.StatusCode)
	}
	if d := tp2.dialed; len(d) == 0 || !strings.HasPrefix(d[0], "127.0.0.1:") && !strings.HasPrefix(d[0], "[::1]:") {
		t.Errorf("dialed %v, want an IP literal from the lookup", d)
	}
}

// rebindingResolver answers a public address first and loopback after, the
// way a DNS rebinding attack does.
type rebindingResolver struct{ calls atomic.Int64 }

func (r *rebindingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if r.calls.Add(1) == 1 {
		return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func TestGuardDialsTheAddressItChecked(t *testing.T) {
	res := &rebindingResolver{}
	var dialed []string
	refuse := func(_ context.Context, _, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return nil, errors.New("test network: refused")
	}
	tp := startProxy(t, Config{Rules: []Rule{{Host: "rebind.test"}}}, WithResolver(res), WithDialer(refuse))
	resp, body, _ := tp.raw(connectReq("rebind.test:443", testToken))
	if resp.StatusCode != 502 {
		t.Errorf("CONNECT to an unreachable public address: %d %q, want 502", resp.StatusCode, body)
	}
	if len(dialed) != 1 || dialed[0] != "203.0.113.7:443" || res.calls.Load() != 1 {
		t.Errorf("dialed %v after %d lookups; want exactly the checked 203.0.113.7:443 after one lookup", dialed, res.calls.Load())
	}
}

func TestClassify(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "127.9.9.9": "loopback", "::1": "loopback",
		"169.254.169.254": "link-local (cloud metadata)", "fe80::1": "link-local",
		"fd00:ec2::254": "cloud metadata", "100.100.100.200": "cloud metadata",
		"10.0.0.1": "private", "172.16.5.4": "private", "172.31.255.255": "private", "192.168.1.1": "private", "fd00::1": "private",
		"fec0::1": "site-local", "100.64.0.1": "CGNAT", "100.127.255.254": "CGNAT",
		"0.0.0.0": "unspecified", "::": "unspecified", "224.0.0.1": "multicast", "ff02::1": "multicast", "255.255.255.255": "reserved",
		"::ffff:10.0.0.1": "private", "64:ff9b::7f00:1": "loopback",
		// IPv6 forms that carry a refused IPv4 address.
		"::7f00:1": "loopback", "::a9fe:a9fe": "link-local (cloud metadata)", "::2": "unspecified",
		"::ffff:0:a00:1":               "private",
		"64:ff9b:1::a9fe:a9fe":         "link-local (cloud metadata)", // a /96 local-use NAT64 prefix
		"64:ff9b:1:7f00:0:100::":       "loopback",                    // a /48 one: bytes 6, 7, 9, 10
		"64:ff9b:1:ff0a:0:a::":         "private",                     // a /56 one: 10.0.0.10 at bytes 7, 9, 10, 11
		"2002:a9fe:a9fe::1":            "link-local (cloud metadata)",
		"2001:0:808:808:0:0:80ff:fffe": "loopback", // Teredo, client 127.0.0.1 (obfuscated)
		"2001:0:7f00:1::":              "loopback", // Teredo, server 127.0.0.1
		// Public, embedded or not.
		"8.8.8.8": "", "172.32.0.1": "", "100.128.0.1": "", "2606:4700::1111": "", "203.0.113.7": "",
		"2002:808:808::1": "", "::808:808": "", "64:ff9b:1::808:808": "",
	} {
		if got := classify(netip.MustParseAddr(addr)).class; got != want {
			t.Errorf("classify(%s) = %q, want %q", addr, got, want)
		}
	}
}

// refusingDialer records the addresses it is asked for and connects none.
type refusingDialer struct {
	mu     sync.Mutex
	dialed []string
}

func (d *refusingDialer) dial(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, addr)
	d.mu.Unlock()
	return nil, errors.New("test network: refused")
}

func (d *refusingDialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dialed...)
}

func TestGuardRefusesEmbeddedIPv4(t *testing.T) {
	names := map[string]string{
		"compat.test":    "::7f00:1",
		"siit.test":      "::ffff:0:a00:1",
		"nat64.test":     "64:ff9b:1::a9fe:a9fe",
		"sixtofour.test": "2002:a9fe:a9fe::1",
		"teredo.test":    "2001:0:808:808:0:0:80ff:fffe",
		"sitelocal.test": "fec0::1",
		"public.test":    "2002:808:808::1",
	}
	res := &mapResolver{m: map[string][]netip.Addr{}}
	var rules []Rule
	for n, a := range names {
		res.m[n] = []netip.Addr{netip.MustParseAddr(a)}
		rules = append(rules, Rule{Host: n})
	}
	rules = append(rules, Rule{Host: "::a9fe:a9fe"})
	d := &refusingDialer{}
	tp := startProxy(t, Config{Rules: rules}, WithResolver(res), WithDialer(d.dial))
	for _, c := range []struct{ target, want string }{
		{"compat.test:443", "an IPv4-compatible IPv6 address that carries 127.0.0.1, a loopback address"},
		{"siit.test:443", "carries 10.0.0.1, a private address"},
		{"nat64.test:443", "a local-use NAT64 IPv6 address that carries 169.254.169.254"},
		{"sixtofour.test:443", "a 6to4 IPv6 address that carries 169.254.169.254"},
		{"teredo.test:443", "a Teredo IPv6 address that carries 127.0.0.1"},
		{"sitelocal.test:443", "a site-local address"},
		{"[::a9fe:a9fe]:80", "::a9fe:a9fe is an IPv4-compatible IPv6 address that carries 169.254.169.254"},
	} {
		resp, body, _ := tp.raw(connectReq(c.target, testToken))
		if resp.StatusCode != 403 || !strings.Contains(body, c.want) {
			t.Errorf("CONNECT %s: %d %q, want 403 saying %q", c.target, resp.StatusCode, body, c.want)
		}
	}
	if got := d.addrs(); len(got) != 0 {
		t.Errorf("the guard let dials through to %v", got)
	}
	// A 6to4 address of a public IPv4 address is public.
	if resp, body, _ := tp.raw(connectReq("public.test:443", testToken)); resp.StatusCode != 502 {
		t.Errorf("CONNECT public.test (6to4 of 8.8.8.8): %d %q, want the dial tried (502 here)", resp.StatusCode, body)
	}
}

func TestPrivateDoesNotOpenLoopbackOrMetadata(t *testing.T) {
	res := &mapResolver{m: map[string][]netip.Addr{
		"lo.test":    {netip.MustParseAddr("127.0.0.1")},
		"meta.test":  {netip.MustParseAddr("169.254.169.254")},
		"meta6.test": {netip.MustParseAddr("fd00:ec2::254")},
		"ali.test":   {netip.MustParseAddr("100.100.100.200")},
		"lan.test":   {netip.MustParseAddr("10.1.2.3")},
	}}
	d := &refusingDialer{}
	tp := startProxy(t, Config{Rules: []Rule{{Host: "*.test", Private: true}}}, WithResolver(res), WithDialer(d.dial))
	for _, c := range []struct{ host, want string }{
		{"lo.test", "a loopback address"},
		{"meta.test", "a link-local (cloud metadata) address"},
		{"meta6.test", "a cloud metadata address"},
		{"ali.test", "a cloud metadata address"},
	} {
		resp, body, _ := tp.raw(connectReq(c.host+":443", testToken))
		if resp.StatusCode != 403 || !strings.Contains(body, c.want) {
			t.Errorf("CONNECT %s with private: true: %d %q, want 403 saying %q", c.host, resp.StatusCode, body, c.want)
		}
	}
	if got := d.addrs(); len(got) != 0 {
		t.Errorf("private: true let dials through to %v", got)
	}
	if resp, body, _ := tp.raw(connectReq("lan.test:443", testToken)); resp.StatusCode != 502 || fmt.Sprint(d.addrs()) != "[10.1.2.3:443]" {
		t.Errorf("CONNECT lan.test with private: true: %d %q, dialed %v; want the private address dialled", resp.StatusCode, body, d.addrs())
	}
}

func TestLoopbackAndMetadataOptIns(t *testing.T) {
	res := &mapResolver{m: map[string][]netip.Addr{
		"lo.test":   {netip.MustParseAddr("127.0.0.1")},
		"meta.test": {netip.MustParseAddr("169.254.169.254")},
	}}
	d := &refusingDialer{}
	tp := startProxy(t, Config{Rules: []Rule{
		{Host: "lo.test", Loopback: true},
		{Host: "meta.test", Metadata: true},
	}}, WithResolver(res), WithDialer(d.dial))
	for _, h := range []string{"lo.test", "meta.test"} {
		if resp, body, _ := tp.raw(connectReq(h+":443", testToken)); resp.StatusCode != 502 {
			t.Errorf("CONNECT %s with its opt-in: %d %q, want the dial tried (502 here)", h, resp.StatusCode, body)
		}
	}
	if got := fmt.Sprint(d.addrs()); got != "[127.0.0.1:443 169.254.169.254:443]" {
		t.Errorf("dialed %s", got)
	}
	// Each opt-in opens its own class only.
	for _, c := range []struct {
		rule Rule
		addr string
	}{
		{Rule{Host: "x.test", Loopback: true}, "169.254.169.254"},
		{Rule{Host: "x.test", Metadata: true}, "127.0.0.1"},
		{Rule{Host: "x.test", Loopback: true, Metadata: true}, "10.0.0.1"},
	} {
		r := compilePolicy(Config{Rules: []Rule{c.rule}}, nil).reachAllowed("x.test", 443)
		if cl := classify(netip.MustParseAddr(c.addr)); cl.lift&r != 0 {
			t.Errorf("rule %+v opens %s (%s)", c.rule, c.addr, cl.class)
		}
	}
}

// publicResolver answers a public test address for each name; echoDialer
// connects every dial to a local echo server, so that approved hosts (which
// get no opt-in to loopback) are reached in tests.
func publicResolver(names ...string) *mapResolver {
	r := &mapResolver{m: map[string][]netip.Addr{}}
	for i, n := range names {
		r.m[n] = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})}
	}
	return r
}

func echoDialer(t *testing.T) DialFunc {
	host, port := echoServer(t)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(host, fmt.Sprint(port)))
	}
}

func TestApprovals(t *testing.T) {
	res := publicResolver("once.test", "always.test", "no.test", "slow.test", "denied.test")
	var asked atomic.Int64
	var lastReq approval.Request
	decider := approval.DeciderFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
		asked.Add(1)
		lastReq = req
		switch {
		case strings.HasPrefix(req.Subject, "once.test:"):
			return approval.AllowOnce, nil
		case strings.HasPrefix(req.Subject, "always.test:"):
			return approval.AllowAlways, nil
		case strings.HasPrefix(req.Subject, "slow.test:"):
			<-ctx.Done()
			return approval.Deny, ctx.Err()
		}
		return approval.Deny, nil
	})
	cfg := Config{
		Approvals:       true,
		ApprovalTimeout: Duration(300 * time.Millisecond),
		Rules: []Rule{
			{Host: "denied.test", Ports: []int{443}, Deny: true},
		},
	}
	tp := startProxy(t, cfg, WithResolver(res), WithDecider(decider), WithDialer(echoDialer(t)))
	check := func(host string, wantStatus int, wantBody string) {
		t.Helper()
		resp, body, conn := tp.raw(connectReq(host+":443", testToken))
		conn.Close() // ends an allowed tunnel, which writes its audit line
		if resp.StatusCode != wantStatus || !strings.Contains(body, wantBody) {
			t.Errorf("CONNECT %s: %d %q, want %d %q", host, resp.StatusCode, body, wantStatus, wantBody)
		}
	}
	check("once.test", 200, "")
	if lastReq.Kind != approval.Egress || lastReq.Subject != "once.test:443" || lastReq.Requester == "" {
		t.Errorf("approval request: %+v", lastReq)
	}
	check("no.test", 403, "and the user denied it")
	check("slow.test", 403, "no one approved it within 300ms")
	check("always.test", 200, "")
	n := asked.Load()
	check("always.test", 200, "")
	if asked.Load() != n {
		t.Error("an allow-always host was asked about again")
	}
	n = asked.Load()
	check("denied.test", 403, "refused by egress rule")
	if asked.Load() != n {
		t.Error("a host a deny rule refuses was sent for approval")
	}
	tp.waitAudit(map[string]any{"host": "once.test", "rule": "approval (allow-once)"})
	tp.waitAudit(map[string]any{"host": "no.test", "rule": "approval", "decision": "deny"})

	// Without approvals in the config the decider is never asked.
	cfg.Approvals = false
	tp2 := startProxy(t, cfg, WithResolver(res), WithDecider(decider))
	n = asked.Load()
	resp, body, _ := tp2.raw(connectReq("once.test:443", testToken))
	if resp.StatusCode != 403 || !strings.Contains(body, "not on the egress allowlist") || asked.Load() != n {
		t.Errorf("approvals off: %d %q, asked %d times", resp.StatusCode, body, asked.Load()-n)
	}
}

func TestApprovalsNotAskedForGuardedDestinations(t *testing.T) {
	// A human is asked only about destinations the proxy would then reach:
	// never about one the guard refuses, nor about a name that does not
	// resolve.
	res := &mapResolver{m: map[string][]netip.Addr{
		"lo.test":     {netip.MustParseAddr("127.0.0.1")},
		"meta.test":   {netip.MustParseAddr("::a9fe:a9fe")},
		"lan.test":    {netip.MustParseAddr("10.0.0.7")},
		"public.test": {netip.MustParseAddr("203.0.113.9")},
	}}
	var asked []string
	var mu sync.Mutex
	decider := approval.DeciderFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
		mu.Lock()
		asked = append(asked, req.Subject)
		mu.Unlock()
		return approval.AllowOnce, nil
	})
	d := &refusingDialer{}
	tp := startProxy(t, Config{Approvals: true}, WithResolver(res), WithDecider(decider), WithDialer(d.dial))
	for _, c := range []struct {
		req    string
		status int
		want   string
	}{
		{connectReq("lo.test:443", testToken), 403, "lo.test resolves to 127.0.0.1, a loopback address"},
		{connectReq("meta.test:443", testToken), 403, "carries 169.254.169.254"},
		{connectReq("lan.test:443", testToken), 403, "a private address"},
		{connectReq("169.254.169.254:80", testToken), 403, "link-local"},
		{connectReq("nx.test:443", testToken), 502, "cannot resolve nx.test"},
		{"GET http://lo.test/ HTTP/1.1\r\nHost: lo.test\r\nProxy-Authorization: " + basic(testToken) + "\r\n\r\n", 403, "loopback"},
	} {
		resp, body, _ := tp.raw(c.req)
		if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%q: %d %q, want %d %q", strings.SplitN(c.req, "\r\n", 2)[0], resp.StatusCode, body, c.status, c.want)
		}
	}
	mu.Lock()
	if len(asked) != 0 {
		t.Errorf("a human was asked about %v, which the guard refuses or which do not resolve", asked)
	}
	mu.Unlock()
	// A public destination is still asked about.
	tp.raw(connectReq("public.test:443", testToken))
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(asked) != "[public.test:443]" {
		t.Errorf("asked %v, want [public.test:443]", asked)
	}
}

func TestApprovedHostIsReached(t *testing.T) {
	// An approved host is dialled like a listed one; here the dialer maps
	// the public test address to the local echo server. (Port 2222: a
	// tunnel to 443 must carry TLS.)
	host, port := echoServer(t)
	res := &mapResolver{m: map[string][]netip.Addr{"new.test": {netip.MustParseAddr("203.0.113.9")}}}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "203.0.113.9:2222" {
			return nil, fmt.Errorf("unexpected dial to %s", addr)
		}
		return net.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	}
	decider := approval.DeciderFunc(func(context.Context, approval.Request) (approval.Decision, error) {
		return approval.AllowOnce, nil
	})
	tp := startProxy(t, Config{Approvals: true}, WithResolver(res), WithDialer(dial), WithDecider(decider))
	resp, _, conn := tp.raw(connectReq("new.test:2222", testToken))
	if resp.StatusCode != 200 {
		t.Fatalf("approved CONNECT: %d", resp.StatusCode)
	}
	io.WriteString(conn, "hi")
	b := make([]byte, 2)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "hi" {
		t.Errorf("echo through the approved tunnel: %q %v", b, err)
	}
}

func TestLimits(t *testing.T) {
	host, port := echoServer(t)
	tp := startProxy(t, Config{
		Rules: []Rule{{Host: host, Ports: []int{port}, Loopback: true}},
		Limits: Limits{
			MaxHeaderBytes: 4096,
			HeaderTimeout:  Duration(400 * time.Millisecond),
			IdleTimeout:    Duration(2 * time.Second),
			MaxTunnels:     1,
		},
	})
	hp := fmt.Sprintf("%s:%d", host, port)

	resp, _, _ := tp.raw("CONNECT " + hp + " HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 8000) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: %d, want 431", resp.StatusCode)
	}
	resp, _, _ = tp.raw("THIS IS NOT HTTP\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Errorf("malformed request: %d, want 400", resp.StatusCode)
	}

	// A slow client gets 408 and does not hold up another client.
	slow, err := net.Dial("tcp", tp.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "CONNECT "+hp+" HTTP/1.1\r\n")
	resp, _, conn := tp.raw(connectReq(hp, testToken))
	if resp.StatusCode != 200 {
		t.Fatalf("a client next to a slow one: %d", resp.StatusCode)
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	sresp, err := http.ReadResponse(bufioReader(slow), nil)
	if err != nil || sresp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow client: %v %v, want 408", sresp, err)
	}

	// The one tunnel allowed is open (conn): a second is refused with 503.
	resp, body, _ := tp.raw(connectReq(hp, testToken))
	if resp.StatusCode != 503 || !strings.Contains(body, "too many open tunnels") {
		t.Errorf("second tunnel over the limit: %d %q", resp.StatusCode, body)
	}
	// The open tunnel carries nothing and is closed after the idle timeout.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("an idle tunnel was not closed")
	} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Errorf("idle tunnel still open after %s", time.Since(start))
	}
	for _, st := range []int{400, 408, 431, 503} {
		tp.waitAudit(map[string]any{"status": st, "decision": "deny"})
	}
	// After the idle tunnel closed, its slot is free again.
	deadline := time.Now().Add(5 * time.Second)
	for tp.p.Health().Tunnels != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, _, _ = tp.raw(connectReq(hp, testToken))
	if resp.StatusCode != 200 {
		t.Errorf("a tunnel after the idle one closed: %d", resp.StatusCode)
	}
}

func TestTunnelNotIdleWhileOneDirectionStreams(t *testing.T) {
	// A long download with a silent upload direction is not idle.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for i := range 16 {
			if _, err := fmt.Fprintf(c, "t%02d,", i); err != nil {
				return
			}
			// The pacing is the scenario: 1.6s of stream against a 1s idle
			// timeout, never idle for more than 0.1s. Real sockets, so no
			// synctest bubble: its clock stands still on network reads.
			time.Sleep(100 * time.Millisecond)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	tp := startProxy(t, Config{
		Rules:  []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}},
		Limits: Limits{IdleTimeout: Duration(time.Second)},
	})
	resp, _, conn := tp.raw(connectReq(fmt.Sprintf("127.0.0.1:%d", port), testToken))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	b, err := io.ReadAll(conn)
	want := ""
	for i := range 16 {
		want += fmt.Sprintf("t%02d,", i)
	}
	if err != nil || string(b) != want {
		t.Errorf("streamed %q over 1.6s with a 1s idle timeout, want %q: %v", b, want, err)
	}
}

func TestServeStopsAndHealth(t *testing.T) {
	host, port := echoServer(t)
	dir := t.TempDir()
	auditFile := filepath.Join(dir, "audit.jsonl")
	p, err := New(Config{TokenFile: writeFile(t, dir, "tok", testToken), AuditFile: auditFile, Rules: []Rule{{Host: host, Ports: []int{port}, Loopback: true}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, connectReq(fmt.Sprintf("%s:%d", host, port), testToken))
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	h := p.Health()
	if !h.Serving || h.Tunnels != 1 || h.Conns != 1 {
		t.Errorf("health with one tunnel: %+v", h)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("open tunnel after shutdown: read err %v, want closed", err)
	}
	if p.Health().Serving {
		t.Error("health says serving after Serve returned")
	}
	// Serve returned only after the tunnel's handler wrote its audit line,
	// so the bundle can close the audit file right away.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(auditFile); !strings.Contains(string(b), `"method":"CONNECT"`) {
		t.Errorf("audit after shutdown lacks the tunnel: %q", b)
	}
}

// upgradeHandler answers any Upgrade with a 101 and then echoes; on
// /rogue101 it switches protocols unasked. It records the headers it saw.
func upgradeHandler(seen *upstreamSeen) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		if up := r.Header.Get("Upgrade"); up != "" || r.URL.Path == "/rogue101" {
			if up == "" {
				up = "rogue"
			}
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + up + "\r\n\r\n")
			brw.Flush()
			io.Copy(c, brw)
			return
		}
		w.(http.Flusher).Flush() // no Content-Length: the body's length is unknown
		io.WriteString(w, "streamed body")
	}
}

// upgradeEnv is a proxy in front of upgradeHandler, on hp.
func upgradeEnv(t *testing.T) (tp *testProxy, seen *upstreamSeen, hp, auth string) {
	seen = &upstreamSeen{}
	up := httptest.NewServer(upgradeHandler(seen))
	t.Cleanup(up.Close)
	_, port := hostPortOf(t, up.URL)
	tp = startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})
	return tp, seen, fmt.Sprintf("127.0.0.1:%d", port), "Proxy-Authorization: " + basic(testToken) + "\r\n"
}

func TestHTTP10AndUpgrade(t *testing.T) {
	tp, _, hp, auth := upgradeEnv(t)

	// An HTTP/1.0 client cannot read chunked bodies: it gets the body
	// until the connection closes.
	resp, body, _ := tp.raw("GET http://" + hp + "/ HTTP/1.0\r\n" + auth + "\r\n")
	if resp.StatusCode != 200 || body != "streamed body" || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Errorf("HTTP/1.0: %d %q TE=%v close=%v", resp.StatusCode, body, resp.TransferEncoding, resp.Close)
	}
	resp, body, _ = tp.raw("GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nConnection: close\r\n" + auth + "\r\n")
	if resp.StatusCode != 200 || body != "streamed body" || len(resp.TransferEncoding) == 0 {
		t.Errorf("HTTP/1.1: %d %q TE=%v", resp.StatusCode, body, resp.TransferEncoding)
	}

	// A WebSocket is relayed both ways.
	resp, _, conn := tp.raw("GET http://" + hp + "/ws HTTP/1.1\r\nHost: " + hp + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + auth + "\r\n")
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	io.WriteString(conn, "frame")
	b := make([]byte, 5)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "frame" {
		t.Errorf("upgraded echo: %q %v", b, err)
	}
	conn.Close()
}

func TestOnlyWebSocketUpgradesPass(t *testing.T) {
	tp, seen, hp, auth := upgradeEnv(t)
	for _, c := range []struct{ headers, want string }{
		{"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n", "Upgrade: h2c is refused: only WebSocket upgrades pass"},
		{"Connection: Upgrade\r\nUpgrade: echo\r\n", "Upgrade: echo is refused"},
		{"Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n", "Upgrade: websocket, h2c is refused"},
	} {
		before := seen.count()
		resp, body, _ := tp.raw("GET http://" + hp + "/v1/x HTTP/1.1\r\nHost: " + hp + "\r\n" + c.headers + auth + "\r\n")
		if resp.StatusCode != 403 || !strings.Contains(body, c.want) {
			t.Errorf("%q: %d %q, want 403 saying %q", c.headers, resp.StatusCode, body, c.want)
		}
		if seen.count() != before {
			t.Errorf("%q reached the upstream", c.headers)
		}
	}
	// HTTP2-Settings is never passed on, listed in Connection or not.
	resp, _, _ := tp.raw("GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nConnection: close\r\n" + auth + "\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("GET with HTTP2-Settings: %d", resp.StatusCode)
	}
	if h := seen.last(t).header; h.Get("Http2-Settings") != "" {
		t.Errorf("the upstream got HTTP2-Settings %q", h.Get("Http2-Settings"))
	}
	// An upstream that switches protocols unasked gets no tunnel.
	resp, body, conn := tp.raw("GET http://" + hp + "/rogue101 HTTP/1.1\r\nHost: " + hp + "\r\n" + auth + "\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "did not ask for") {
		t.Errorf("unasked 101: %d %q, want 502", resp.StatusCode, body)
	}
	conn.Close()
}

func TestStreamedResponseIsFlushed(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	defer up.Close()
	defer close(release)
	_, port := hostPortOf(t, up.URL)
	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})
	resp, err := tp.client(nil).Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("data: first\n\n"))
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, buf); got <- err }()
	select {
	case err := <-got:
		if err != nil || string(buf) != "data: first\n\n" {
			t.Errorf("first event: %q %v", buf, err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the first event of a stream was held back by the proxy")
	}
}

func TestTLSUpstreamUnreachable(t *testing.T) {
	// Closed port on loopback: 502 with the reason, audited as an error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port}, Loopback: true}}})
	resp, body, _ := tp.raw(connectReq(fmt.Sprintf("127.0.0.1:%d", port), testToken))
	if resp.StatusCode != 502 || !strings.Contains(body, "connecting to 127.0.0.1") {
		t.Errorf("closed port: %d %q", resp.StatusCode, body)
	}
	tp.waitAudit(map[string]any{"decision": "error", "status": 502})
	_ = tls.VersionTLS12
}

// bannerServer dials every address to an echo server that greets first.
func bannerServer(t *testing.T, banner string) DialFunc {
	addr := testio.Echo(t, banner).String()
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

func TestRawTunnelPorts(t *testing.T) {
	const banner = "SSH-2.0-stand-in\r\n"
	res := &mapResolver{m: map[string][]netip.Addr{"web.test": {netip.MustParseAddr("203.0.113.5")}}}
	tp := startProxy(t, Config{
		Rules: []Rule{
			{Host: "web.test", Ports: []int{443, 2222}},
			{Host: "203.0.113.5", Ports: []int{443}},
		},
		Limits: Limits{HeaderTimeout: Duration(300 * time.Millisecond), IdleTimeout: Duration(2 * time.Second)},
	}, WithResolver(res), WithDialer(bannerServer(t, banner)))
	open := func(target string) net.Conn {
		t.Helper()
		resp, _, conn := tp.raw(connectReq(target, testToken))
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT %s: %d", target, resp.StatusCode)
		}
		return conn
	}
	readBanner := func(conn net.Conn) {
		t.Helper()
		b := make([]byte, len(banner))
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != banner {
			t.Fatalf("banner: %q %v", b, err)
		}
	}

	// Port 443 carries TLS only: plain HTTP in the tunnel is answered in
	// HTTP, and reaches nothing.
	conn := open("web.test:443")
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
	all, _ := io.ReadAll(conn)
	if !strings.Contains(string(all), "403 Forbidden") || !strings.Contains(string(all), "carries no TLS") || strings.Contains(string(all), "GET /") {
		t.Errorf("plain HTTP through a tunnel to 443: %q", all)
	}
	// A client that sends nothing is closed after the header timeout.
	conn = open("web.test:443")
	start := time.Now()
	io.ReadAll(conn)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a silent tunnel to 443 stayed open %s", d)
	}
	tp.waitAudit(map[string]any{"decision": "deny", "reason": "the tunnel to web.test:443 sent no TLS ClientHello within 300ms"})

	// A ClientHello naming the host passes (the upstream, an echo here,
	// gets it as sent), one naming another is refused.
	hello := goHello(t, "web.test")
	conn = open("web.test:443")
	conn.Write(hello)
	readBanner(conn)
	echo := make([]byte, len(hello))
	if _, err := io.ReadFull(conn, echo); err != nil || !bytes.Equal(echo, hello) {
		t.Errorf("the ClientHello naming web.test did not reach the upstream as sent: %v", err)
	}
	conn.Close()
	// (The stand-in greets first even here, and echoes: what it echoes is
	// what reached it.)
	conn = open("web.test:443")
	other := goHello(t, "other.test")
	conn.Write(other)
	if all, _ := io.ReadAll(conn); bytes.Contains(all, other[:40]) || !bytes.HasSuffix(all, []byte{0x15, 3, 1, 0, 2, 2, alertUnrecognizedName}) {
		t.Errorf("a ClientHello naming other.test: the client read %q, want an alert and no echo", all)
	}
	// An IP address is reached without a name, not with another one.
	conn = open("203.0.113.5:443")
	conn.Write(goHello(t, ""))
	readBanner(conn)
	conn.Close()
	conn = open("203.0.113.5:443")
	cdn := goHello(t, "cdn.test")
	conn.Write(cdn)
	if all, _ := io.ReadAll(conn); bytes.Contains(all, cdn[:40]) {
		t.Errorf("a ClientHello naming cdn.test through an IP address reached the upstream: %q", all)
	}

	// Another port carries what its server speaks, the server first, for
	// longer than the header timeout, and TLS on it is still checked.
	conn = open("web.test:2222")
	readBanner(conn)
	time.Sleep(500 * time.Millisecond) // the client's silence is the scenario, past the header timeout
	io.WriteString(conn, "SSH-2.0-client\r\n")
	b := make([]byte, len("SSH-2.0-client\r\n"))
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "SSH-2.0-client\r\n" {
		t.Errorf("a server-first protocol on port 2222: %q %v", b, err)
	}
	conn.Close()
	conn = open("web.test:2222")
	readBanner(conn)
	conn.Write(other)
	if all, _ := io.ReadAll(conn); len(all) == 0 || all[0] != 0x15 {
		t.Errorf("a ClientHello naming other.test on port 2222: read %q, want a TLS alert", all)
	}
}

// TestAuthFailuresCloseTheConnection pipelines requests without the token
// on one connection: the first 407 closes it, so the rest cost the proxy
// (and its audit) nothing.
func TestAuthFailuresCloseTheConnection(t *testing.T) {
	for _, max := range []int{0, 3} {
		tp := startProxy(t, Config{Limits: Limits{MaxAuthFailures: max}})
		c, err := net.Dial("tcp", tp.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			for range 2000 {
				if _, err := io.WriteString(c, "GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n"); err != nil {
					return
				}
			}
		}()
		out, _ := io.ReadAll(c)
		want := max
		if want == 0 {
			want = 1
		}
		if n := strings.Count(string(out), "407 Proxy Authentication Required"); n != want {
			t.Errorf("max_auth_failures %d: %d 407s on one connection, want %d then the close", max, n, want)
		}
		if !strings.Contains(string(out), "Connection: close") {
			t.Errorf("max_auth_failures %d: the last 407 does not say Connection: close", max)
		}
	}
}

// TestRepeatedRefusalsAreSummed floods the proxy with refusals, each on a
// connection of its own, as an agent rotating the audit would: the audit
// gets the first of each kind and a line that sums up the rest.
func TestRepeatedRefusalsAreSummed(t *testing.T) {
	host, port := echoServer(t)
	tp := startProxy(t, Config{Rules: []Rule{{Host: host, Ports: []int{port}, Loopback: true}}})
	const flood = 300
	for range flood {
		tp.raw("GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n")
		tp.raw(connectReq("unlisted.test:443", testToken))
	}
	// An allowed tunnel in the middle of the flood is written as ever.
	_, _, conn := tp.raw(connectReq(fmt.Sprintf("%s:%d", host, port), testToken))
	conn.Close()
	// Many kinds: beyond maxRefusalKinds a second they are only counted.
	for i := range 2 * maxRefusalKinds {
		tp.raw(connectReq(fmt.Sprintf("unlisted-%d.test:443", i), testToken))
	}
	// The sums are written when each second's window ends.
	want := 2*flood + 2*maxRefusalKinds
	var lines []map[string]any
	counted := 0
	for deadline := time.Now().Add(10 * time.Second); counted != want && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines, counted = tp.auditLines(), tp.countAudit(map[string]any{"decision": "deny"})
	}
	for _, l := range lines {
		if reason, _ := l["reason"].(string); l["repeated"] != nil && !strings.Contains(reason, "more like this in the last second") && !strings.Contains(reason, "were only counted") {
			t.Errorf("a summing line does not say what it sums: %v", l)
		}
	}
	if counted != want {
		t.Errorf("the audit accounts for %d refusals, want %d: %v", counted, want, lines)
	}
	// A window of a second holds the flood (or a few, on a slow machine).
	if len(lines) > want/4 {
		t.Errorf("%d refusals made %d audit lines", want, len(lines))
	}
	tp.waitAudit(map[string]any{"method": "CONNECT", "host": host, "decision": "allow"})
}
