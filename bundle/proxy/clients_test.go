package proxy

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealClientsAnswerTheChallengeOnANewConnection drives curl and git
// through the proxy the way they authenticate when told "anyauth" (git's
// default): first without credentials, then, after the 407 that closes the
// connection, with them on a new one. The upstream is git's own
// git-http-backend.
func TestRealClientsAnswerTheChallengeOnANewConnection(t *testing.T) {
	for _, tool := range []string{"curl", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test drives the real %s client, which is not installed: %v (apt-get install %s)", tool, err, tool)
		}
	}
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("git", "init", "-q", "-b", "main", "work")
	run("git", "-C", "work", "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q", "--allow-empty", "-m", "first")
	run("git", "clone", "-q", "--bare", "work", "srv/repo.git")
	backend := filepath.Join(strings.TrimSpace(run("git", "--exec-path")), "git-http-backend")

	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.Handle("/repo.git/", &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + filepath.Join(dir, "srv"), "GIT_HTTP_EXPORT_ALL=1"}})
	up := httptest.NewServer(mux)
	defer up.Close()
	_, port := hostPortOf(t, up.URL)
	tlsUp := httptest.NewTLSServer(mux)
	defer tlsUp.Close()
	caFile := filepath.Join(dir, "up-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw}), 0o600)
	_, tlsPort := hostPortOf(t, tlsUp.URL)
	tp := startProxy(t, Config{Rules: []Rule{{Host: "127.0.0.1", Ports: []int{port, tlsPort}, Loopback: true}}})
	proxyURL := "http://" + tp.addr

	if out := run("curl", "-sS", "--fail", "--proxy-anyauth", "-x", proxyURL, "-U", "agent:"+testToken, up.URL+"/hello"); out != "hello" {
		t.Errorf("curl --proxy-anyauth: %q", out)
	}
	// The same through a CONNECT tunnel, whose 407 closes the connection
	// too.
	if out := run("curl", "-sS", "--fail", "--proxy-anyauth", "-x", proxyURL, "-U", "agent:"+testToken, "--cacert", caFile, tlsUp.URL+"/hello"); out != "hello" {
		t.Errorf("curl --proxy-anyauth over CONNECT: %q", out)
	}
	authed := strings.Replace(proxyURL, "http://", "http://agent:"+testToken+"@", 1)
	run("git", "-c", "http.proxy="+authed, "-c", "http.proxyAuthMethod=anyauth", "clone", "-q", up.URL+"/repo.git", "clone")
	if out := run("git", "-C", "clone", "log", "--format=%s"); out != "first\n" {
		t.Errorf("git clone through the proxy: log %q", out)
	}
	if out := run("git", "-c", "http.proxy="+authed, "ls-remote", up.URL+"/repo.git"); !strings.Contains(out, "refs/heads/main") {
		t.Errorf("git ls-remote through the proxy: %q", out)
	}
	// Each was challenged (curl twice, git at the clone and the ls-remote),
	// and answered on a new connection.
	tp.waitAudit(map[string]any{"path": "/hello", "decision": "allow", "status": 200})
	tp.waitAudit(map[string]any{"path": "/repo.git/git-upload-pack", "decision": "allow", "status": 200})
	deadline := time.Now().Add(10 * time.Second)
	for tp.countAudit(map[string]any{"status": 407}) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the clients were challenged %d times, want 4: %v", tp.countAudit(map[string]any{"status": 407}), tp.auditLines())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
