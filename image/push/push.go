// Package push writes an image whose blobs are in the store to a registry:
// the embedded one (layers as they are, uncompressed, over loopback) or the
// user's (layers gzipped once and cached, credentials from the docker CLI
// configuration).
package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// Options says how to push.
type Options struct {
	// Auth is used when set; otherwise Keychain (for the user's registry,
	// see Keychain); otherwise anonymous.
	Auth     authn.Authenticator
	Keychain authn.Keychain
	// Compress gzips uncompressed layers (once; the result is cached in
	// the store). For registries across a network; never for loopback.
	Compress bool
	Progress display.Writer
	// Transport replaces http.DefaultTransport.
	Transport http.RoundTripper
	// Jobs is the number of blobs uploaded at once (default 4).
	Jobs int
}

// Result is a pushed image.
type Result struct {
	// Ref names the image by digest in the target repository.
	Ref    name.Digest
	Digest v1.Hash
	// BlobBytesSent counts blob upload bodies: zero when the registry
	// had every blob already.
	BlobBytesSent int64
}

// Image pushes img (blobs in st) to dst, a tag or a digest reference; with a
// repository-only dst it is pushed by digest.
func Image(ctx context.Context, st *store.Store, img store.Image, dst string, opts Options) (Result, error) {
	pw := opts.Progress
	if pw == nil {
		pw = display.Discard
	}
	if opts.Compress {
		var err error
		if img, err = Compressed(ctx, st, img, pw); err != nil {
			return Result{}, err
		}
	}
	vimg, err := st.V1Image(img)
	if err != nil {
		return Result{}, err
	}
	digest, err := vimg.Digest()
	if err != nil {
		return Result{}, err
	}
	ref, err := name.ParseReference(dst)
	if err != nil {
		repo, rerr := name.NewRepository(dst)
		if rerr != nil {
			return Result{}, fmt.Errorf("bad registry reference %q: %w", dst, err)
		}
		ref = repo.Digest(digest.String())
	} else if _, isTag := ref.(name.Tag); isTag && !strings.Contains(dst, ":") {
		// name.ParseReference adds ":latest" to a bare repository.
		ref = ref.Context().Digest(digest.String())
	}

	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	counter := &countingTransport{next: base}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(counter),
		remote.WithJobs(jobs),
		remote.WithUserAgent("docker-bottle"),
	}
	switch {
	case opts.Auth != nil:
		ropts = append(ropts, remote.WithAuth(opts.Auth))
	case opts.Keychain != nil:
		ropts = append(ropts, remote.WithAuthFromKeychain(opts.Keychain))
	}
	updates := make(chan v1.Update, 64)
	ropts = append(ropts, remote.WithProgress(updates))
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		var last time.Time
		for u := range updates {
			if time.Since(last) > 500*time.Millisecond || u.Complete == u.Total {
				last = time.Now()
				pw.Event(display.Event{Stage: display.StagePush, ID: ref.Context().String(), Status: display.Working, Current: u.Complete, Total: u.Total})
			}
		}
	}()
	err = remote.Write(ref, vimg, ropts...)
	<-progressDone
	if err != nil {
		return Result{}, explain(ref, err)
	}
	res := Result{Ref: ref.Context().Digest(digest.String()), Digest: digest, BlobBytesSent: counter.sent.Load()}
	pw.Event(display.Event{Stage: display.StagePush, ID: ref.Context().String(), Status: display.Done, Text: "pushed " + res.Ref.String(), Current: res.BlobBytesSent})
	return res, nil
}

// explain turns registry refusals into errors that say what to do.
func explain(ref name.Reference, err error) error {
	reg := ref.Context().RegistryStr()
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("push to %s: the registry refused the credentials for %s from the docker CLI configuration; run `docker login %s` and try again: %w", ref.Context(), reg, reg, err)
		case http.StatusForbidden:
			return fmt.Errorf("push to %s: the registry denied access; check that your account (`docker login %s`) may push to this repository: %w", ref.Context(), reg, err)
		}
	}
	return fmt.Errorf("push to %s: %w", ref.Context(), err)
}

// countingTransport counts the bodies of blob uploads.
type countingTransport struct {
	next http.RoundTripper
	sent atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.Contains(r.URL.Path, "/blobs/uploads") && r.Method != http.MethodGet {
		body := r.Body
		r = r.Clone(r.Context())
		r.Body = &countingBody{ReadCloser: body, n: &c.sent}
	}
	return c.next.RoundTrip(r)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
