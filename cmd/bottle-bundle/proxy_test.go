package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
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

	// A free port for the proxy: the config names its address.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pl.Addr().String()
	pl.Close()

	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	cfg := filepath.Join(dir, "proxy.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"listen": %q, "bottle": "cmd", "token_file": %q, "audit_file": %q,
		"rules": [{"host": "127.0.0.1", "ports": [%d], "loopback": true}]}`, addr, tok, filepath.Join(dir, "audit.jsonl"), upPort)), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemons["proxy"](ctx, []string{"--config", cfg}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy daemon: %v", err)
		}
	}()

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
