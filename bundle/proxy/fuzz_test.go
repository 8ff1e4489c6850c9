package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzServeConn feeds arbitrary bytes to the proxy as one client connection
// over real loopback TCP. Whatever arrives, the proxy must answer with HTTP
// (or nothing), end the connection when the client stops sending, and never
// panic or hang. Nothing leaves the machine: the resolver knows one test name
// and the dialer refuses everything.
func FuzzServeConn(f *testing.F) {
	auth := "Proxy-Authorization: " + basic(testToken) + "\r\n"
	for _, s := range []string{
		"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n" + auth + "\r\n",
		"CONNECT denied.test:443 HTTP/1.1\r\n" + auth + "\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\n" + auth + "\r\n",
		"CONNECT 169.254.169.254:80 HTTP/1.1\r\n" + auth + "\r\n",
		"GET http://a.example.com/x?y HTTP/1.1\r\nHost: a.example.com\r\n" + auth + "\r\n",
		"POST http://allowed.test/p HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n" + auth + "\r\nhello",
		"GET http://allowed.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" + auth + "\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://allowed.test/ HTTP/1.1\r\n\r\nGET http://allowed.test/ HTTP/1.1\r\n\r\n",
		"CONNECT allowed.test HTTP/1.1\r\n" + auth + "\r\n",
		"CONNECT allowed.test:99999 HTTP/1.1\r\n" + auth + "\r\n",
		"\x16\x03\x01\x00\x05hello",
		"",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	cfg := Config{
		TokenFile: writeFileF(f, dir, "token", testToken),
		Rules: []Rule{
			{Host: "allowed.test"},
			{Host: "*.example.com", Ports: []int{80, 443, 8080}},
			{Host: "bad.example.com", Deny: true},
		},
		Limits: Limits{MaxHeaderBytes: 8 << 10, HeaderTimeout: Duration(2 * time.Second), IdleTimeout: Duration(2 * time.Second)},
	}
	res := &mapResolver{m: map[string][]netip.Addr{"allowed.test": {netip.MustParseAddr("203.0.113.1")}}}
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("fuzz: no network") }
	p, err := New(cfg, WithResolver(res), WithDialer(refuse), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go p.Serve(ctx, ln)

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("the proxy did not end the connection: %v (input %q)", err, data)
		}
		if len(out) == 0 {
			return
		}
		if !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("answer is not HTTP/1.1: %q (input %q)", out, data)
		}
		if _, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil); err != nil {
			t.Fatalf("answer does not parse: %v: %q", err, out)
		}
		if bytes.Contains(out, []byte(testToken)) {
			t.Fatalf("the answer contains the proxy token: %q", out)
		}
	})
}

// FuzzHostMatch checks host normalisation and rule matching against a
// label-by-label restatement of the rules.
func FuzzHostMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*.example.com", "a.example.com"}, {"*.example.com", "example.com"}, {"*.example.com", "aexample.com"},
		{"example.com", "EXAMPLE.com."}, {"10.0.0.1", "::ffff:10.0.0.1"}, {"*.b.c", "a.b.c:443"},
		{"::1", "[::1]:443"}, {"*.x", "1.2.3.x"}, {"a", "a%00"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, hostport string) {
		n := normHost(hostport)
		if normHost(n) != n {
			t.Fatalf("normHost not idempotent: %q -> %q -> %q", hostport, n, normHost(n))
		}
		if host, port, err := splitTarget(hostport, 443); err == nil {
			if port < 1 || port > 65535 || host == "" || normHost(host) != host {
				t.Fatalf("splitTarget(%q) = %q, %d", hostport, host, port)
			}
		}
		if validHostPattern(pattern) != nil || n == "" {
			return
		}
		pol := compilePolicy(Config{Rules: []Rule{{Host: pattern, Ports: []int{443}}}}, nil)
		got := pol.connect(n, 443).allow
		want := false
		if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
			hl, sl := strings.Split(n, "."), strings.Split(normHost(suffix), ".")
			_, ipErr := netip.ParseAddr(n)
			want = ipErr != nil && len(hl) > len(sl) && reflect.DeepEqual(hl[len(hl)-len(sl):], sl)
		} else {
			want = n == normHost(pattern)
		}
		if got != want {
			t.Fatalf("rule %q, host %q: allow=%v, want %v", pattern, n, got, want)
		}
		if pol.connect(n, 80).allow {
			t.Fatalf("rule %q for port 443 allowed port 80", pattern)
		}
	})
}

// FuzzParseConfig checks that any input either fails with an error or gives a
// configuration that survives a JSON round trip and compiles.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"token_file":"t","rules":[{"host":"*.a.com","ports":[1,65535],"private":true}]}`))
	f.Add([]byte(`{"token_file":"t","ca_cert_file":"c","ca_key_file":"k","secrets":[{"host":"a.com","header":"A","format":"Bearer {value}","value_file":"v"}],"rules":[{"host":"a.com","methods":["GET"],"paths":["/x*"]}]}`))
	f.Add([]byte(`{"token_file":"t","limits":{"idle_timeout":"1m","header_timeout":3},"approval_timeout":"1s"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("a valid config does not parse after a round trip: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(emptyToNil(cfg), emptyToNil(again)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, again)
		}
		pol := compilePolicy(cfg, nil)
		for _, r := range cfg.Rules {
			h := strings.TrimPrefix(r.Host, "*.")
			if strings.HasPrefix(r.Host, "*.") {
				h = "x." + h
			}
			pol.connect(normHost(h), 443)
			pol.request(normHost(h), 443, "GET", &url.URL{Path: "/"}, nil)
		}
	})
}

// emptyToNil treats empty lists as absent, as omitempty writes them.
func emptyToNil(c Config) Config {
	if len(c.Rules) == 0 {
		c.Rules = nil
	}
	if len(c.Secrets) == 0 {
		c.Secrets = nil
	}
	rules := make([]Rule, len(c.Rules))
	for i, r := range c.Rules {
		if len(r.Ports) == 0 {
			r.Ports = nil
		}
		if len(r.Methods) == 0 {
			r.Methods = nil
		}
		if len(r.Paths) == 0 {
			r.Paths = nil
		}
		rules[i] = r
	}
	if c.Rules != nil {
		c.Rules = rules
	}
	return c
}

func writeFileF(f *testing.F, dir, name, content string) string {
	p := dir + "/" + name
	if err := writeFileErr(p, content); err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzFormOverride: formOverride takes any body without failing, and finds
// every _method key that Go's own form parser (strict) or a multipart
// reader would see.
func FuzzFormOverride(f *testing.F) {
	f.Add([]byte("a=1&_method=DELETE"), "application/x-www-form-urlencoded")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		got := formOverride(body, ctype)
		if strings.HasPrefix(ctype, "multipart/") {
			return
		}
		if vs, err := url.ParseQuery(string(body)); err == nil {
			for k := range vs {
				if strings.EqualFold(k, "_method") && got == "" {
					t.Fatalf("%q has key %q, not found", body, k)
				}
			}
		}
	})
}
