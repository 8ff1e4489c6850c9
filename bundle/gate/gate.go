// Package gate is the bundle's git gate: a git smart-HTTP server (protocol
// v0, v1 and, for fetches, v2) over the bottle's bare repository. It lets
// the agent fetch everything the repository was given and push only what the
// bottle's rules allow: the bottle's own branches, fast-forward only, no
// deletions or tags unless allowed, and nothing that touches a protected
// path (CI workflows, hooks) without a human's approval. It needs no git
// binary: the protocol, the object walks and the packs are in Go.
package gate

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/auth"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
	"github.com/docker-bottle/docker-bottle/bundle/listen"
)

// Realm is the HTTP Basic realm the gate announces.
const Realm = "docker bottle gate"

const agentName = "docker-bottle-gate/1"

// Gate serves one bare repository. It is an http.Handler.
type Gate struct {
	cfg       Config
	token     string
	repo      *repo.Repo
	decider   approval.Decider
	audit     *audit.Logger
	ownAudit  bool
	logger    *log.Logger
	refRules  []string
	protected pathMatcher
	// start and startRef are where the bottle started (Config.Start).
	start    repo.Hash
	startRef string

	// memory is the process's memory limit, which bounds a push.
	memory int64
	// pushSlot lets one push at a time be indexed and decided: each checks
	// and updates refs as one step, and the memory a push may take is
	// derived from the whole process's. queued counts the pushes waiting.
	pushSlot chan struct{}
	queued   atomic.Int32
	// packs bounds the pack generations running at once, and with them the
	// memory that concurrent clones take.
	packs chan struct{}
}

// Option configures a Gate.
type Option func(*Gate)

// WithDecider holds pushes that touch protected paths for a human through d
// when approvals are enabled. Without it such pushes are refused.
func WithDecider(d approval.Decider) Option { return func(g *Gate) { g.decider = d } }

// WithAudit writes audit records to l (e.g. the bundle's shared logger)
// instead of opening Config.AuditFile.
func WithAudit(l *audit.Logger) Option { return func(g *Gate) { g.audit = l } }

// WithLogger sets where operational errors are logged (default: stderr).
func WithLogger(l *log.Logger) Option { return func(g *Gate) { g.logger = l } }

// MaxConcurrentPacks bounds pack generations running at once; more requests
// wait their turn.
const MaxConcurrentPacks = 4

// New checks cfg, reads the token and opens the repository.
func New(cfg Config, opts ...Option) (*Gate, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("gate config: %w", err)
	}
	g := &Gate{cfg: cfg, refRules: cfg.Push.Refs, protected: newPathMatcher(cfg.ProtectedPaths),
		packs: make(chan struct{}, MaxConcurrentPacks), pushSlot: make(chan struct{}, 1), memory: DefaultMemoryLimit}
	for _, o := range opts {
		o(g)
	}
	if g.logger == nil {
		g.logger = log.New(os.Stderr, "gate: ", log.LstdFlags)
	}
	if g.token, err = readToken(cfg.TokenFile); err != nil {
		return nil, err
	}
	if g.repo, err = repo.Open(cfg.Repo); err != nil {
		return nil, fmt.Errorf("opening the bottle's repository: %w", err)
	}
	if g.start, g.startRef, err = g.startPoint(); err != nil {
		g.repo.Close()
		return nil, err
	}
	if targets := g.linkTargets(); len(targets) > 0 {
		g.protected = newPathMatcher(append(append([]string(nil), cfg.ProtectedPaths...), targets...))
	}
	g.sweep()
	if g.audit == nil && cfg.AuditFile != "" {
		if g.audit, err = audit.Open(cfg.AuditFile, 0); err != nil {
			g.repo.Close()
			return nil, err
		}
		g.ownAudit = true
	}
	return g, nil
}

func readToken(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading the gate token: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: it must be readable by its owner only (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the gate token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// Close releases the repository and the audit file the gate opened.
func (g *Gate) Close() error {
	err := g.repo.Close()
	if g.ownAudit {
		err = errors.Join(err, g.audit.Close())
	}
	return err
}

// Bounds on the gate's connections (see bundle/listen). The agent is the
// gate's one client; the bounds keep its connections from exhausting the
// process the proxy and the supervisor share.
const (
	MaxConns          = 128
	MaxConnsPerClient = 96
	// A push body may be large (up to the pack limit): it has minutes.
	bodyTimeout = 10 * time.Minute
)

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully.
func (g *Gate) Serve(ctx context.Context, ln net.Listener) error {
	ln = listen.Limit(ln, listen.Limits{MaxConns: MaxConns, MaxPerClient: MaxConnsPerClient, WriteStall: 2 * time.Minute})
	srv := listen.HTTPServer(g, listen.Timeouts{Header: 30 * time.Second, Body: bodyTimeout, Idle: 2 * time.Minute})
	srv.ErrorLog = g.logger
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// ServeHTTP routes git's smart-HTTP requests. The repository is served at
// every path prefix: /info/refs, /repo.git/info/refs and
// /org/repo.git/info/refs all reach it, so the bottle's git can map any
// remote URL to the gate.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pass, ok := auth.BasicPassword(r.Header.Get("Authorization"))
	if !ok || !auth.Equal(pass, g.token) {
		if ok {
			g.record(map[string]any{"event": "auth", "remote": r.RemoteAddr, "decision": "deny",
				"reason": "wrong token"})
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
		http.Error(w, "authentication required: use the bottle's git token", http.StatusUnauthorized)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/healthz":
		if _, err := g.repo.Head(); err != nil {
			http.Error(w, "repository unreadable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	case strings.HasSuffix(p, "/info/refs"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		g.infoRefs(w, r)
	case strings.HasSuffix(p, "/git-upload-pack"), strings.HasSuffix(p, "/git-receive-pack"):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		svc := p[strings.LastIndexByte(p, '/')+1:]
		if ct := r.Header.Get("Content-Type"); ct != "application/x-"+svc+"-request" {
			http.Error(w, fmt.Sprintf("unsupported content type %q: expected application/x-%s-request", ct, svc), http.StatusUnsupportedMediaType)
			return
		}
		body, err := requestBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer body.Close()
		if svc == "git-upload-pack" {
			g.uploadPack(w, r, body)
		} else {
			g.receivePack(w, r, body)
		}
	default:
		http.Error(w, "not found: the git gate serves git's smart HTTP protocol only (clone with a git client)", http.StatusNotFound)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func requestBody(r *http.Request) (io.ReadCloser, error) {
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		return r.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("bad gzip request body: %w", err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, r.Body}, nil
	default:
		return nil, fmt.Errorf("unsupported content encoding %q", enc)
	}
}

// protocolVersion reads the Git-Protocol header ("version=2", possibly with
// other colon-separated keys).
func protocolVersion(r *http.Request) int {
	v := 0
	for _, kv := range strings.Split(r.Header.Get("Git-Protocol"), ":") {
		switch strings.TrimSpace(kv) {
		case "version=2":
			v = 2
		case "version=1":
			if v == 0 {
				v = 1
			}
		}
	}
	return v
}

func noCache(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
}

func (g *Gate) infoRefs(w http.ResponseWriter, r *http.Request) {
	svc := r.URL.Query().Get("service")
	if svc != "git-upload-pack" && svc != "git-receive-pack" {
		if svc == "" {
			http.Error(w, "the git gate speaks smart HTTP only; your git client is too old or not git", http.StatusForbidden)
		} else {
			http.Error(w, fmt.Sprintf("unsupported service %q", svc), http.StatusForbidden)
		}
		return
	}
	if err := g.repo.Refresh(); err != nil {
		g.internalError(w, err)
		return
	}
	noCache(w)
	w.Header().Set("Content-Type", "application/x-"+svc+"-advertisement")
	ver := protocolVersion(r)
	if svc == "git-upload-pack" && ver == 2 {
		g.advertiseV2(w)
		return
	}
	if err := g.advertiseV0(w, svc, ver == 1); err != nil {
		g.logger.Printf("advertising refs: %v", err)
	}
}

func (g *Gate) internalError(w http.ResponseWriter, err error) {
	g.logger.Printf("internal error: %v", err)
	http.Error(w, "git gate: internal error: "+err.Error(), http.StatusInternalServerError)
}

// record writes one audit line.
func (g *Gate) record(rec map[string]any) {
	if g.audit == nil {
		return
	}
	rec["daemon"] = "gate"
	rec["bottle"] = g.cfg.Bottle
	if err := g.audit.Write(rec); err != nil {
		g.logger.Printf("audit: %v", err)
	}
}
