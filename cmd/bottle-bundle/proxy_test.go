package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunProxy runs `bottle-bundle proxy --config FILE` in process and sends
// a request through it to a local upstream.
func TestRunProxy(t *testing.T) {
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") })}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(uln)
	defer up.Close()
	upPort := uln.Addr().(*net.TCPAddr).Port

	addr, dir := runProxyDaemon(t, fmt.Sprintf(`[{"host": "127.0.0.1", "ports": [%d], "loopback": true}]`, upPort))

	var resp *http.Response
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", upPort), nil)
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("x:s3cret")))
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(mustURL(t, "http://"+addr))}}
		if resp, err = c.Do(req); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the proxy never answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream" {
		t.Errorf("through bottle-bundle proxy: %d %q", resp.StatusCode, body)
	}
	// The audit line is written once the request is done, which may be
	// just after the client has its answer.
	var audit []byte
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if audit, _ = os.ReadFile(filepath.Join(dir, "audit.jsonl")); strings.Contains(string(audit), `"bottle":"cmd"`) {
			break
		}
	}
	if !strings.Contains(string(audit), `"bottle":"cmd"`) {
		t.Errorf("audit file: %q", audit)
	}
}

func TestRunProxyUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"--config"}, {"--config", "/nonexistent/proxy.json"}, {"--config", "a", "extra"}} {
		if err := runProxy(context.Background(), args); err == nil {
			t.Errorf("runProxy(%q) succeeded", args)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// runProxyDaemon runs `bottle-bundle proxy --config FILE` in process, for
// the bottle "cmd", with token "s3cret" and rules (JSON), on a free port,
// until the test ends. It returns the address and the dir of the config
// and the audit file.
func runProxyDaemon(t *testing.T, rules string) (addr, dir string) {
	t.Helper()
	// A free port for the proxy: the config names its address.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = pl.Addr().String()
	pl.Close()

	dir = t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	cfg := filepath.Join(dir, "proxy.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"listen": %q, "bottle": "cmd", "token_file": %q, "audit_file": %q, "rules": %s}`,
		addr, tok, filepath.Join(dir, "audit.jsonl"), rules)), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemons["proxy"](ctx, []string{"--config", cfg}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy daemon: %v", err)
		}
	})
	return addr, dir
}

// TestRunProxyHoldsItsRules runs `bottle-bundle proxy --config FILE` with
// the rule options a bottle's config carries and tries the ways around the
// rules the proxy refuses: a TLS name other than the CONNECT's, h2c, a
// private-only rule for a loopback name, and requests without the token
// pipelined on one connection.
func TestRunProxyHoldsItsRules(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	up.StartTLS()
	defer up.Close()
	upPort := up.Listener.Addr().(*net.TCPAddr).Port
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") }))
	defer plain.Close()
	plainPort := plain.Listener.Addr().(*net.TCPAddr).Port

	addr, _ := runProxyDaemon(t, fmt.Sprintf(`[
		{"host": "localhost", "ports": [%d], "loopback": true},
		{"host": "127.0.0.1", "ports": [%d], "loopback": true},
		{"host": "localhost", "ports": [%d], "private": true}]`, upPort, plainPort, plainPort))
	auth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x:s3cret")) + "\r\n"
	send := func(req string) (*http.Response, net.Conn) {
		t.Helper()
		var c net.Conn
		var err error
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
			if c, err = net.Dial("tcp", addr); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("the proxy never listened: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(req)[0]})
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		return resp, &readConn{Conn: c, r: br}
	}
	tlsThrough := func(serverName string) error {
		target := fmt.Sprintf("localhost:%d", upPort)
		resp, c := send("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" + auth + "\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT %s: %s", target, resp.Status)
		}
		// No verification: the name sent is what is tested.
		return tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
	}
	if err := tlsThrough("localhost"); err != nil {
		t.Errorf("TLS naming the CONNECT's host: %v", err)
	}
	if err := tlsThrough("other-tenant.example"); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("TLS naming another host: %v, want the tunnel refused", err)
	}
	if err := tlsThrough(""); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("TLS naming no host, without allow_no_sni: %v, want the tunnel refused", err)
	}
	hp := fmt.Sprintf("127.0.0.1:%d", plainPort)
	if resp, _ := send("GET http://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n" + auth + "\r\n"); resp.StatusCode != 403 {
		t.Errorf("h2c upgrade: %s, want 403", resp.Status)
	}
	lh := fmt.Sprintf("localhost:%d", plainPort)
	if resp, _ := send("GET http://" + lh + "/ HTTP/1.1\r\nHost: " + lh + "\r\n" + auth + "\r\n"); resp.StatusCode != 403 {
		t.Errorf("a loopback name under a private-only rule: %s, want 403", resp.Status)
	}
	resp, c := send(strings.Repeat("GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\n\r\n", 50))
	rest, _ := io.ReadAll(c)
	if resp.StatusCode != 407 || !resp.Close || strings.Contains(string(rest), "407") {
		t.Errorf("requests without the token: %s close=%v, then %q; want one 407 and the close", resp.Status, resp.Close, rest)
	}
}

type readConn struct {
	net.Conn
	r io.Reader
}

func (c *readConn) Read(b []byte) (int, error) { return c.r.Read(b) }
