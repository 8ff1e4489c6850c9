package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/probe"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

const (
	slug         = "probe-test"
	allowedHost  = "allowed.probe.test"
	unlistedHost = "unlisted.probe.test"
)

// leaks are the deliberate holes a bottle can be given, so that the judge
// is shown to fail.
type leaks struct {
	unlistedAllowed bool // the proxy also allows the unlisted host
	mainWritable    bool // the gate accepts pushes to every branch
	operatorToken   bool // the bottle's token is the supervisor's operator token
	dnsAnswers      bool // the resolver answers every name
	secretInEnv     bool // the secret is in an environment variable
	secretInFile    bool // the secret is in a file under /run/bottle
	reachable       bool // the direct and loopback targets listen
}

// bottle is a bundle's three real daemons on 127.0.0.1, real upstreams, a
// real bottle CA and the files a bottle has, laid out in a temp root.
type bottle struct {
	t      *testing.T
	dir    string
	secret string
	// The bottle's own files, as /run/bottle would hold them.
	runDir    string
	tokenFile string
	caFile    string // the bottle CA alone
	caBundle  string // the test's "system roots" plus the bottle CA
	bottleCA  *pki.CA
	home      string
	workspace string
	gateRepo  string
	opToken   string

	proxyAddr, gateAddr, superviseAddr string
	allowedTLS, allowedHTTP, unlisted  string // URLs
	unlistedHits                       *atomic.Int64
	direct, loopback                   string // HOST:PORT
	dns                                string
	sup                                *supervisor.Supervisor
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o700))
	must(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// serve runs srv on a loopback listener until the test ends.
func serve(t *testing.T, h http.Handler, tlsCert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if tlsCert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*tlsCert}}
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// listening returns a loopback address that accepts connections.
func listening(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// names is the proxy's resolver: the test's upstream names, on loopback.
type names map[string]bool

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if n[host] {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// startDNS serves DNS on UDP loopback: REFUSED for everything, or (answer)
// an A record of 192.0.2.7 for every name.
func startDNS(t *testing.T, answer bool) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			m := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired,
				RCode: dnsmessage.RCodeRefused}, Questions: []dnsmessage.Question{q}}
			if answer {
				m.Header.RCode, m.Header.RecursionAvailable = dnsmessage.RCodeSuccess, true
				if q.Type == dnsmessage.TypeA {
					m.Answers = []dnsmessage.Resource{{
						Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
						Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}},
					}}
				}
			}
			out, err := m.Pack()
			if err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// git runs the real git with an isolated configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newBottle(t *testing.T, l leaks) *bottle {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("these tests make the gate's repository with the real git, which is not installed: %v (apt-get install git)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	b := &bottle{t: t, dir: dir, secret: "sk-probe-" + randHex(16), unlistedHits: &atomic.Int64{}}
	stage := filepath.Join(dir, "stage")
	agentToken, opToken := randHex(32), randHex(32)
	b.opToken = opToken
	agentTokenFile := writeFile(t, filepath.Join(stage, "agent.token"), agentToken+"\n")
	opTokenFile := writeFile(t, filepath.Join(stage, "operator.token"), opToken+"\n")
	secretFile := writeFile(t, filepath.Join(stage, "secrets", "api-key"), b.secret+"\n")

	// The bottle CA, and a CA of the test's "internet".
	bottleCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "state", "ca"))
	must(t, err)
	netCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "internet-ca"))
	must(t, err)
	minter, err := pki.NewMinter(netCA, 8)
	must(t, err)
	allowedCert, err := minter.Leaf(allowedHost)
	must(t, err)
	unlistedCert, err := minter.Leaf(unlistedHost)
	must(t, err)

	// The allowed upstream answers only when the proxy added the secret.
	allowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+b.secret {
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello from the allowed upstream")
	})
	tlsAddr := serve(t, allowed, allowedCert)
	// The proxy adds secrets over TLS only: the http upstream wants none.
	httpAddr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the allowed upstream, in the clear")
	}), nil)
	unlistedAddr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.unlistedHits.Add(1)
		fmt.Fprintln(w, "the unlisted upstream was reached")
	}), unlistedCert)
	port := func(addr string) int { _, p, _ := net.SplitHostPort(addr); n, _ := strconv.Atoi(p); return n }
	b.allowedTLS = fmt.Sprintf("https://%s:%d/", allowedHost, port(tlsAddr))
	b.allowedHTTP = fmt.Sprintf("http://%s:%d/", allowedHost, port(httpAddr))
	b.unlisted = fmt.Sprintf("https://%s:%d/", unlistedHost, port(unlistedAddr))

	// The proxy.
	rules := []proxy.Rule{{Host: allowedHost, Ports: []int{port(tlsAddr), port(httpAddr)}, Loopback: true}}
	if l.unlistedAllowed {
		rules = append(rules, proxy.Rule{Host: unlistedHost, Ports: []int{port(unlistedAddr)}, Loopback: true})
	}
	pcfg := proxy.Config{Bottle: slug, TokenFile: agentTokenFile, Rules: rules,
		Secrets:    []proxy.Secret{{Host: allowedHost, Header: "Authorization", Format: "Bearer {value}", ValueFile: secretFile}},
		CACertFile: filepath.Join(dir, "state", "ca", pki.CertFile), CAKeyFile: filepath.Join(dir, "state", "ca", pki.KeyFile),
		RootsFile: filepath.Join(dir, "internet-ca", pki.CertFile), AuditFile: filepath.Join(stage, "proxy-audit.jsonl")}
	px, err := proxy.New(pcfg, proxy.WithResolver(names{allowedHost: true, unlistedHost: true}),
		proxy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	must(t, err)
	b.proxyAddr = serveDaemon(t, ctx, px.Serve, px.Close)

	// The gate, over a bare repository made from a user repository.
	user := filepath.Join(dir, "user")
	must(t, os.MkdirAll(user, 0o755))
	git(t, user, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(user, "README.md"), "a project\n")
	writeFile(t, filepath.Join(user, "src", "main.go"), "package main\n")
	git(t, user, "add", "-A")
	git(t, user, "commit", "-q", "-m", "first")
	writeFile(t, filepath.Join(user, "src", "util.go"), "package main\n\nfunc util() {}\n")
	git(t, user, "add", "-A")
	git(t, user, "commit", "-q", "-m", "second")
	b.gateRepo = filepath.Join(stage, "gate.git")
	must(t, gitstage.Prepare(ctx, user, b.gateRepo))
	gcfg := gate.Config{Listen: "127.0.0.1:0", Bottle: slug, Repo: b.gateRepo, TokenFile: agentTokenFile,
		AuditFile: filepath.Join(stage, "gate-audit.jsonl")}
	if l.mainWritable {
		gcfg.Push.Refs = []string{"refs/heads/**"}
	}
	g, err := gate.New(gcfg)
	must(t, err)
	b.gateAddr = serveDaemon(t, ctx, g.Serve, g.Close)

	// The supervisor.
	scfg := supervisor.Config{Bottle: slug, AgentTokenFile: agentTokenFile, OperatorTokenFile: opTokenFile}
	if l.operatorToken {
		// The bottle's token is the one that may decide approvals.
		scfg.AgentTokenFile, scfg.OperatorTokenFile = opTokenFile, agentTokenFile
	}
	sup, err := supervisor.New(scfg, supervisor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	must(t, err)
	b.sup = sup
	b.superviseAddr = serveDaemon(t, ctx, sup.Serve, sup.Close)

	// What the bottle holds: /run/bottle (token, CA, prompt), a home and a
	// workspace, none with the secret unless a leak puts it there.
	b.runDir = filepath.Join(dir, "root", "run", "bottle")
	b.tokenFile = writeFile(t, filepath.Join(b.runDir, "token"), agentToken+"\n")
	b.caFile = writeFile(t, filepath.Join(b.runDir, "ca.pem"), string(bottleCA.CertPEM()))
	b.caBundle = writeFile(t, filepath.Join(dir, "root", "etc", "docker-bottle", "ca-bundle.pem"),
		string(netCA.CertPEM())+string(bottleCA.CertPEM()))
	b.bottleCA = bottleCA
	writeFile(t, filepath.Join(b.runDir, "prompt"), "")
	b.home = filepath.Join(dir, "root", "home", "agent")
	writeFile(t, filepath.Join(b.home, ".profile"), "export EDITOR=vi\n")
	b.workspace = filepath.Join(dir, "root", "workspace")
	writeFile(t, filepath.Join(b.workspace, "README.md"), "a project\n")
	if l.secretInFile {
		writeFile(t, filepath.Join(b.runDir, "credentials"), "[default]\napi_key = "+b.secret+"\n")
	}

	b.direct, b.loopback = closedPort(t), closedPort(t)
	if l.reachable {
		b.direct, b.loopback = tlsAddr, listening(t)
	}
	b.dns = startDNS(t, l.dnsAnswers)
	return b
}

// serveDaemon serves a bundle daemon on a loopback listener until the test
// ends.
func serveDaemon(t *testing.T, ctx context.Context, serve func(context.Context, net.Listener) error, closeFn func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("a daemon did not stop")
		}
		closeFn()
	})
	return ln.Addr().String()
}

// env is the environment a plan gives the agent (plan.guestEnv's names),
// pointing at the test's daemons, plus the leaks asked for.
func (b *bottle) env(l leaks) []string {
	proxyURL := "http://" + b.proxyAddr
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + b.home,
		"HTTPS_PROXY=" + proxyURL, "HTTP_PROXY=" + proxyURL, "https_proxy=" + proxyURL, "http_proxy=" + proxyURL,
		"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
		"SSL_CERT_FILE=" + b.caBundle,
		"NODE_EXTRA_CA_CERTS=" + b.caFile,
		"BOTTLE_NAME=" + slug,
		"BOTTLE_BRANCH=bottle/" + slug + "/work",
		"BOTTLE_GATE_URL=http://" + b.gateAddr + "/",
		"BOTTLE_SUPERVISE_URL=http://" + b.superviseAddr,
		"BOTTLE_PROMPT_FILE=" + filepath.Join(b.runDir, "prompt"),
		"BOTTLE_TOKEN_FILE=" + b.tokenFile,
	}
	if l.secretInEnv {
		env = append(env, "LEAKED_KEY=Bearer "+b.secret)
	}
	return env
}

func (b *bottle) secretHash() (string, int) {
	sum := sha256.Sum256([]byte(b.secret))
	return hex.EncodeToString(sum[:]), len(b.secret)
}

// run runs the probe binary as the agent would, some settings from a
// --config file and the rest as flags, and decodes its report.
func (b *bottle) run(bin string, l leaks, extra ...string) probe.Report {
	t := b.t
	t.Helper()
	sum, n := b.secretHash()
	cfg := probe.Config{
		Unlisted: []string{b.unlisted},
		Lookup:   []string{"api.github.com"},
		Secrets:  []probe.SecretHash{{SHA256: sum, Len: n}},
		Scan:     []string{b.runDir},
	}
	data, err := json.Marshal(cfg)
	must(t, err)
	cfgFile := writeFile(t, filepath.Join(b.dir, "probe.json"), string(data))
	args := []string{"probe", "--config", cfgFile,
		"--allowed", b.allowedTLS, "--allowed", b.allowedHTTP,
		"--direct", b.direct, "--loopback", b.loopback,
		"--lookup-domain", "probe.test", "--resolver", b.dns,
		"--workspace", b.workspace, "--root", b.dir,
		"--timeout", "15s", "--dial-timeout", "2s", "--git-timeout", "60s"}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = b.env(l)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the probe exited with %v; stderr:\n%s", err, stderr.String())
	}
	r, err := probe.Decode(stdout.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if testing.Verbose() {
		t.Logf("probe report:\n%s", stdout.String())
	}
	return outsideABottle(t, r, b.dir)
}

// outsideABottle checks that the hardening checks report this test's own
// process, which runs unconfined and writes in root, and returns the
// report with them replaced by those of a confined agent: the judge is to
// see only what the test built (the bottle's daemons), not how it runs.
func outsideABottle(t *testing.T, r probe.Report, root string) probe.Report {
	t.Helper()
	if c := r.Of(probe.KindNonRoot); len(c) != 1 || c[0].Outcome != probe.OutcomeOK || c[0].Evidence.UID == nil || *c[0].Evidence.UID != os.Geteuid() {
		t.Errorf("non-root, want uid %d: %+v", os.Geteuid(), c)
	}
	if c := r.Of(probe.KindNoCapabilities); len(c) != 1 || c[0].Outcome != probe.OutcomeOK || c[0].Evidence.CapEff == "" {
		t.Errorf("no-capabilities: %+v", c)
	}
	if c := r.Of(probe.KindNoNewPrivs); len(c) != 1 || c[0].Outcome != probe.OutcomeOK || c[0].Evidence.NoNewPrivs == nil {
		t.Errorf("no-new-privileges: %+v", c)
	}
	if c := r.Of(probe.KindReadOnlyRoot); len(c) != 1 || c[0].Target != root || c[0].Outcome != probe.OutcomeOK {
		t.Errorf("read-only-root in the writable %s: %+v", root, c)
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".bottle-probe-*")); len(left) != 0 {
		t.Errorf("the probe left %v", left)
	}
	uid, on := 1000, true
	confined := map[probe.Kind]probe.Check{
		probe.KindNonRoot:        {Kind: probe.KindNonRoot, Outcome: probe.OutcomeOK, Evidence: probe.Evidence{UID: &uid}},
		probe.KindNoCapabilities: {Kind: probe.KindNoCapabilities, Outcome: probe.OutcomeOK, Evidence: probe.Evidence{UID: &uid, CapEff: "0000000000000000"}},
		probe.KindNoNewPrivs:     {Kind: probe.KindNoNewPrivs, Outcome: probe.OutcomeOK, Evidence: probe.Evidence{NoNewPrivs: &on}},
		probe.KindReadOnlyRoot: {Kind: probe.KindReadOnlyRoot, Target: "/", Outcome: probe.OutcomeFailed,
			Evidence: probe.Evidence{ReadOnly: true, Error: "read-only file system"}},
	}
	out := r
	out.Checks = nil
	for _, c := range r.Checks {
		if s, ok := confined[c.Kind]; ok {
			c = s
		}
		out.Checks = append(out.Checks, c)
	}
	return out
}

// one returns the only check of kind k (with target when given).
func one(t *testing.T, r probe.Report, k probe.Kind, target string) probe.Check {
	t.Helper()
	var found []probe.Check
	for _, c := range r.Of(k) {
		if target == "" || c.Target == target {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s check for %q, got %d: %+v", k, target, len(found), r.Checks)
	}
	return found[0]
}

func item(t *testing.T, card probe.Card, promise int, k probe.Kind, target string) probe.Item {
	t.Helper()
	for _, p := range card.Promises {
		if p.Promise != promise {
			continue
		}
		for _, it := range p.Items {
			if it.Check == k && (target == "" || it.Target == target) {
				return it
			}
		}
	}
	t.Fatalf("no item %s %q under promise %d", k, target, promise)
	return probe.Item{}
}
