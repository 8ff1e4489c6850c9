package registry_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"

	"github.com/docker-bottle/docker-bottle/image/registry"
	"github.com/docker-bottle/docker-bottle/image/store"
)

func start(t *testing.T) (*registry.Server, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.Start(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, st
}

func TestCredentialsRequired(t *testing.T) {
	srv, _ := start(t)
	if !strings.HasPrefix(srv.Host(), "127.0.0.1:") {
		t.Errorf("registry listens on %s, want 127.0.0.1 only", srv.Host())
	}
	other, _ := start(t)
	if srv.Password() == other.Password() || len(srv.Password()) < 32 {
		t.Errorf("per-run passwords are not random: %q %q", srv.Password(), other.Password())
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{srv.Username(), "wrong", http.StatusUnauthorized},
		{"someone", srv.Password(), http.StatusUnauthorized},
		{srv.Username(), srv.Password(), http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Host()+"/v2/", nil)
		if c.user != "" || c.pass != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /v2/ as %q/%q: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge")
		}
	}
}

// A streamed layer goes POST, PATCH (chunked), PUT: the upload must land on
// disk, not in memory, and be served back byte for byte, ranges included.
func TestStreamedUploadGoesToDisk(t *testing.T) {
	srv, st := start(t)
	const size = 64 << 20
	body := make([]byte, 1<<20)
	_, _ = rand.Read(body)
	l := stream.NewLayer(io.NopCloser(io.MultiReader(repeat(body, size/len(body))...)), stream.WithCompressionLevel(0))
	repo, err := name.NewRepository(srv.Host() + "/bottle/test")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := remote.WriteLayer(repo, l, remote.WithAuth(srv.Authenticator())); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > size/2 {
		t.Errorf("heap grew by %d bytes during a %d-byte upload", grew, size)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.Stat(d)
	if err != nil {
		t.Fatalf("uploaded blob not in the store: %v", err)
	}
	if got := srv.Stats().BlobBytesReceived; got != n {
		t.Errorf("registry received %d bytes for a %d-byte blob", got, n)
	}

	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/bottle/other/blobs/%s", srv.Host(), d), nil)
	req.SetBasicAuth(srv.Username(), srv.Password())
	req.Header.Set("Range", "bytes=10-19")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f, _ := st.Open(d)
	want := make([]byte, 10)
	f.ReadAt(want, 10)
	f.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, want) {
		t.Errorf("range GET: %d %x, want 206 %x", resp.StatusCode, part, want)
	}

	// A monolithic upload whose digest does not match is refused and
	// leaves nothing behind.
	req, _ = http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v2/bottle/test/blobs/uploads/?digest=sha256:%s", srv.Host(), strings.Repeat("0", 64)), strings.NewReader("not that"))
	req.SetBasicAuth(srv.Username(), srv.Password())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("mismatched digest upload: %d", resp.StatusCode)
	}
	if freed, _ := st.RemoveScratch(0); freed != 0 {
		t.Errorf("%d bytes of scratch left by uploads", freed)
	}
}

func repeat(b []byte, n int) []io.Reader {
	rs := make([]io.Reader, n)
	for i := range rs {
		rs[i] = bytes.NewReader(b)
	}
	return rs
}
