// Package registry is the embedded registry: an OCI distribution endpoint
// the plugin serves on 127.0.0.1:<random> for as long as a pack needs it,
// backed by the on-disk blob store, with per-run random basic-auth
// credentials. smolvm pulls from it (crane speaks plain HTTP to 127.0.0.1).
//
// Manifests, tags and blob reads are go-containerregistry's registry over
// the store; blob uploads are handled here, streamed to disk, because that
// registry keeps chunked (PATCH) uploads whole in memory.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/bundle/auth"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// Username is the user name of the per-run credentials.
const Username = "bottle"

// Server is a running embedded registry.
type Server struct {
	st       *store.Store
	ln       net.Listener
	srv      *http.Server
	regs     http.Handler
	user     string
	password string

	mu      sync.Mutex
	uploads map[string]*store.Writer

	received atomic.Int64
	served   atomic.Int64
	done     chan struct{}
	err      error
}

// Option configures Start.
type Option func(*Server)

// WithCredentials replaces the random credentials (for a registry a test or
// benchmark serves under a known login).
func WithCredentials(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// Start serves st on 127.0.0.1 at a random free port.
func Start(st *store.Store, opts ...Option) (*Server, error) {
	s := &Server{
		st:       st,
		user:     Username,
		password: randomHex(32),
		uploads:  map[string]*store.Writer{},
		done:     make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.user == "" || s.password == "" {
		return nil, errors.New("embedded registry: empty credentials")
	}
	s.regs = ggcr.New(
		ggcr.Logger(log.New(io.Discard, "", 0)),
		ggcr.WithBlobHandler(blobHandler{st}),
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded registry: listen on 127.0.0.1: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Host is "127.0.0.1:PORT", the registry part of references to it.
func (s *Server) Host() string { return s.ln.Addr().String() }

// Username and Password are the credentials every request must carry.
func (s *Server) Username() string { return s.user }

// Password returns the per-run password. Give it to smolvm only through
// the environment of its process (SMOLVM_CONFIG's password_env).
func (s *Server) Password() string { return s.password }

// Authenticator returns the credentials for go-containerregistry clients.
func (s *Server) Authenticator() authn.Authenticator {
	return &authn.Basic{Username: s.user, Password: s.password}
}

// Stats counts blob bytes that crossed the registry.
type Stats struct {
	// BlobBytesReceived counts blob upload bodies; BlobBytesServed blob
	// download bodies.
	BlobBytesReceived int64
	BlobBytesServed   int64
}

// Stats returns the counters since Start.
func (s *Server) Stats() Stats {
	return Stats{BlobBytesReceived: s.received.Load(), BlobBytesServed: s.served.Load()}
}

// Close stops serving at once (the registry is only needed while smolvm
// pulls; an idle keep-alive connection must not hold it open) and throws
// away unfinished uploads. It is safe to call twice.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	s.mu.Lock()
	for id, w := range s.uploads {
		w.Abort()
		delete(s.uploads, id)
	}
	s.mu.Unlock()
	if err == nil {
		err = s.err
	}
	return err
}

var (
	uploadsPath = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/?$`)
	uploadPath  = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/([0-9a-f]{32})$`)
	blobPath    = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$`)
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || !auth.Equal(user, s.user) || !auth.Equal(pass, s.password) {
		w.Header().Set("WWW-Authenticate", `Basic realm="docker-bottle"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if m := uploadsPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
		s.startUpload(w, r, m[1])
		return
	}
	if m := uploadPath.FindStringSubmatch(r.URL.Path); m != nil {
		s.continueUpload(w, r, m[1], m[2])
		return
	}
	if r.Method == http.MethodGet && blobPath.MatchString(r.URL.Path) {
		w = &countingResponse{ResponseWriter: w, n: &s.served}
	}
	s.regs.ServeHTTP(w, r)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, repo string) {
	q := r.URL.Query()
	// The store is one namespace, so a cross-repository mount succeeds
	// whenever the blob is there.
	if mount := q.Get("mount"); mount != "" {
		if h, err := v1.NewHash(mount); err == nil && s.st.Has(h) {
			blobCreated(w, repo, h)
			return
		}
	}
	if d := q.Get("digest"); d != "" {
		h, err := v1.NewHash(d)
		if err != nil {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest")
			return
		}
		body := &countingReader{r: r.Body, n: &s.received}
		if _, err := s.st.Put(body, h); err != nil {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
			return
		}
		blobCreated(w, repo, h)
		return
	}
	bw, err := s.st.NewWriter()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	id := randomHex(16)
	s.mu.Lock()
	s.uploads[id] = bw
	s.mu.Unlock()
	uploadAccepted(w, repo, id, 0)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) continueUpload(w http.ResponseWriter, r *http.Request, repo, id string) {
	s.mu.Lock()
	bw, ok := s.uploads[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "unknown upload")
		return
	}
	switch r.Method {
	case http.MethodGet:
		uploadAccepted(w, repo, id, bw.Size())
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodDelete:
		s.forget(id)
		bw.Abort()
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPatch, http.MethodPut:
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed")
		return
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		var start, end int64
		if _, err := fmt.Sscanf(cr, "%d-%d", &start, &end); err != nil || start != bw.Size() {
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "content range does not continue the upload")
			return
		}
	}
	if _, err := bw.ReadFrom(&countingReader{r: r.Body, n: &s.received}); err != nil {
		s.forget(id)
		bw.Abort()
		writeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", err.Error())
		return
	}
	if r.Method == http.MethodPatch {
		uploadAccepted(w, repo, id, bw.Size())
		w.WriteHeader(http.StatusAccepted)
		return
	}
	s.forget(id)
	h, err := v1.NewHash(r.URL.Query().Get("digest"))
	if err != nil {
		bw.Abort()
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "missing or invalid digest")
		return
	}
	if _, err := bw.Commit(h); err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	blobCreated(w, repo, h)
}

func (s *Server) forget(id string) {
	s.mu.Lock()
	delete(s.uploads, id)
	s.mu.Unlock()
}

func uploadAccepted(w http.ResponseWriter, repo, id string, size int64) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
	w.Header().Set("Content-Length", "0")
}

func blobCreated(w http.ResponseWriter, repo string, h v1.Hash) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg) //nolint:gosec // G705: JSON for a registry client on loopback, not a page
}

// blobHandler serves the store to go-containerregistry's registry.
type blobHandler struct{ st *store.Store }

func (b blobHandler) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	n, err := b.st.Stat(h)
	if errors.Is(err, store.ErrNotFound) {
		return 0, ggcr.ErrNotFound
	}
	return n, err
}

func (b blobHandler) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := b.st.Open(h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ggcr.ErrNotFound
	}
	return f, err
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingResponse struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingResponse) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// ReadFrom keeps net/http's sendfile path for blobs served from files.
func (c *countingResponse) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(c.ResponseWriter, r)
	}
	c.n.Add(n)
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
