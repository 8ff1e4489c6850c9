package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/pki"
)

type loopback struct{}

func (loopback) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestSecretsThroughTheProxy gives the real egress proxy each built-in
// provider's secrets, as the plugin will (spec secret to proxy secret, the
// value in a 0600 file), and sends what the agent sends: its placeholder in
// its usual header. A local TLS upstream standing for the API host must get
// the real value in the header the API expects, the placeholder nowhere.
func TestSecretsThroughTheProxy(t *testing.T) {
	dir := t.TempDir()
	bottleCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "bottle-ca"))
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "upstream-ca"))
	if err != nil {
		t.Fatal(err)
	}
	minter, err := pki.NewMinter(upCA, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []http.Header
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	up.TLS = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return minter.Leaf(h.ServerName) }}
	up.Config.ErrorLog = log.New(io.Discard, "", 0)
	up.StartTLS()
	defer up.Close()
	upPort := up.Listener.Addr().(*net.TCPAddr).Port

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	values := map[string]string{
		"ANTHROPIC_API_KEY":       "sk-ant-api03-REAL-key-0001",
		"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-REAL-token-0002",
		"OPENAI_API_KEY":          "sk-proj-REAL-key-0003",
	}
	cfg := proxy.Config{
		Bottle:      "secrets",
		TokenFile:   write("token", "proxy-token"),
		CACertFile:  filepath.Join(dir, "bottle-ca", pki.CertFile),
		CAKeyFile:   filepath.Join(dir, "bottle-ca", pki.KeyFile),
		ExtraCAFile: write("upstream-ca.pem", string(upCA.CertPEM())),
	}
	for _, name := range []string{"claude", "codex"} {
		s := resolved(t, name)
		for _, r := range s.Egress.Allow {
			// The stand-in listens on a loopback port, not 443.
			cfg.Rules = append(cfg.Rules, proxy.Rule{Host: r.Host, Ports: []int{upPort}, Loopback: true})
		}
		for _, sec := range s.Egress.Secrets {
			cfg.Secrets = append(cfg.Secrets, proxy.Secret{Host: sec.Host, Header: sec.Header, Format: sec.Format,
				Placeholder: sec.Placeholder, ValueFile: write(sec.FromEnv, values[sec.FromEnv]+"\n")})
		}
	}
	p, err := proxy.New(cfg, proxy.WithResolver(loopback{}), proxy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	roots := x509.NewCertPool()
	roots.AddCert(bottleCA.Certificate()) // the agent trusts the bottle CA only
	agent := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword("bottle", "proxy-token"), Host: ln.Addr().String()}),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	for _, tc := range []struct {
		name, host, header, sent, want string
	}{
		{"claude API key", AnthropicAPIHost, "X-Api-Key", AnthropicAPIKeyPlaceholder, values["ANTHROPIC_API_KEY"]},
		{"claude OAuth token", AnthropicAPIHost, "Authorization", "Bearer " + ClaudeOAuthPlaceholder, "Bearer " + values["CLAUDE_CODE_OAUTH_TOKEN"]},
		{"codex API key", OpenAIAPIHost, "Authorization", "Bearer " + OpenAIAPIKeyPlaceholder, "Bearer " + values["OPENAI_API_KEY"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			req, _ := http.NewRequest(http.MethodPost, "https://"+tc.host+":"+strconv.Itoa(upPort)+"/v1/messages", strings.NewReader("{}"))
			req.Header.Set(tc.header, tc.sent)
			resp, err := agent.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0].Get(tc.header) != tc.want {
				t.Fatalf("the API got %s: %q, want %q", tc.header, seen[0].Get(tc.header), tc.want)
			}
			for k, vs := range seen[0] {
				for _, v := range vs {
					if strings.Contains(v, "placeholder") {
						t.Errorf("the API got a placeholder in %s: %s", k, v)
					}
				}
			}
		})
	}
}
