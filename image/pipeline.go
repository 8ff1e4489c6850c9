// Package image is the agent image pipeline: from the user's Dockerfile (or
// an existing image) to a cached `.smolmachine` artifact. Build, bottle
// layer, push, pack and the artifact cache each live in a subpackage; this
// package runs them in order and skips all it can: a cache hit moves no
// image bytes at all.
package image

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/export"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/image/registry"
	"github.com/docker-bottle/docker-bottle/image/squash"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// Engine is what the pipeline needs of the Docker engine API
// (dockerCli.Client() satisfies it).
type Engine interface {
	build.ClassicEngine
	export.Engine
}

// Pipeline runs the agent image pipeline. Build it with New.
type Pipeline struct {
	engine   Engine
	builder  build.Builder
	store    *store.Store
	cache    *artifact.Cache
	packer   pack.Packer
	keychain authn.Keychain
	pw       display.Writer
}

// Option configures a Pipeline.
type Option func(*Pipeline)

// WithBuilder sets the builder (see build.New); the default is the engine's
// classic builder.
func WithBuilder(b build.Builder) Option { return func(p *Pipeline) { p.builder = b } }

// WithKeychain sets where credentials for the user's registry come from:
// push.Keychain(dockerCli.ConfigFile()).
func WithKeychain(kc authn.Keychain) Option { return func(p *Pipeline) { p.keychain = kc } }

// WithProgress sets the progress display.
func WithProgress(w display.Writer) Option { return func(p *Pipeline) { p.pw = w } }

// New makes a pipeline whose blobs go to cacheDir/images and artifacts to
// cacheDir/artifacts.
func New(engine Engine, packer pack.Packer, cacheDir string, opts ...Option) (*Pipeline, error) {
	st, err := store.Open(filepath.Join(cacheDir, "images"))
	if err != nil {
		return nil, err
	}
	cache, err := artifact.Open(filepath.Join(cacheDir, "artifacts"))
	if err != nil {
		return nil, err
	}
	p := &Pipeline{engine: engine, packer: packer, store: st, cache: cache, pw: display.Discard}
	for _, o := range opts {
		o(p)
	}
	if p.builder == nil {
		p.builder = build.Classic{Engine: engine}
	}
	return p, nil
}

// Store is the pipeline's blob store.
func (p *Pipeline) Store() *store.Store { return p.store }

// Cache is the pipeline's artifact cache.
func (p *Pipeline) Cache() *artifact.Cache { return p.cache }

// Request is one run of the pipeline.
type Request struct {
	// Build builds the agent image; nil when Image is given.
	Build *build.Options
	// Image is an image the engine has (`agent.image`): no build.
	Image string
	// Bottle is what the bottle layer holds.
	Bottle layer.Spec
	// Registry is the user's repository to push to (`--registry REPO`);
	// empty means the embedded registry.
	Registry string
	// Platform is the guest os/arch; empty means linux/<host arch>.
	Platform string
}

// Result is the outcome of a run.
type Result struct {
	Artifact artifact.Artifact
	// ImageID is the agent image (without the bottle layer) in the engine.
	ImageID string
	// User is the image's USER (the bottle layer keeps it).
	User string
	// CacheHit is true when the artifact was already cached.
	CacheHit bool
	// Ref is what smolvm packed (empty on a cache hit).
	Ref string
	// Bundles are the image's CA bundles the bottle CA was appended to.
	Bundles []string
	// BytesExported counts bytes read from the engine, BytesPushed blob
	// bytes sent to the registry.
	BytesExported int64
	BytesPushed   int64
}

// Run builds (or finds) the agent image, and unless the artifact cache has
// it already, adds the bottle layer, pushes and packs it.
func (p *Pipeline) Run(ctx context.Context, req Request) (Result, error) {
	if (req.Build == nil) == (req.Image == "") {
		return Result{}, errors.New("image pipeline: give either a Dockerfile to build or an image, not both")
	}
	if err := req.Bottle.Validate(); err != nil {
		return Result{}, err
	}
	platform := req.Platform
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	unlock, err := p.store.Lock(false)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	version, err := p.packer.Version(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("smolvm version: %w", err)
	}
	imageRef, err := p.agentImage(ctx, req)
	if err != nil {
		return Result{}, err
	}
	insp, err := p.engine.ImageInspect(ctx, imageRef)
	if err != nil {
		return Result{}, fmt.Errorf("agent image %s: %w", imageRef, err)
	}
	if got := insp.Os + "/" + insp.Architecture; !strings.HasPrefix(platform, got) {
		return Result{}, fmt.Errorf("agent image %s is for %s, but the bottle runs %s; build it for %s", imageRef, got, platform, platform)
	}
	res := Result{ImageID: insp.ID}
	if insp.Config != nil {
		res.User = insp.Config.User
	}
	key := artifact.Key{Image: insp.ID, Smolvm: version, Platform: platform, Layout: artifact.LayoutSquashed}

	// Warm path: the bottle layer for this image is known, so is the key.
	if bl, ok := layer.Cached(p.store, insp.ID, req.Bottle); ok {
		key.BottleLayer = bl.Layer.Digest.String()
		if a, hit, err := p.cache.Lookup(key); err != nil {
			return Result{}, err
		} else if hit {
			res.Artifact, res.CacheHit, res.Bundles = a, true, bl.Bundles
			p.pw.Event(display.Event{Stage: display.StageCache, ID: a.ID[:12], Status: display.Done, Text: "artifact in cache: " + a.Path})
			return res, nil
		}
	}

	exp, err := export.Image(ctx, p.engine, p.store, insp.ID, p.pw)
	if err != nil {
		return Result{}, err
	}
	res.BytesExported = exp.BytesRead
	img, bl, err := layer.Add(p.store, insp.ID, exp.Image, req.Bottle)
	if err != nil {
		return Result{}, err
	}
	res.Bundles = bl.Bundles
	p.pw.Event(display.Event{Stage: display.StageLayer, ID: bl.Layer.Digest.Hex[:12], Status: display.Done, Text: fmt.Sprintf("bottle layer (%s, CA in %d bundle(s))", display.Bytes(bl.Layer.Size), len(bl.Bundles))})
	key.BottleLayer = bl.Layer.Digest.String()
	if a, hit, err := p.cache.Lookup(key); err != nil {
		return Result{}, err
	} else if hit {
		res.Artifact, res.CacheHit = a, true
		return res, nil
	}
	if _, err := p.store.PutBytes(img.Config); err != nil {
		return Result{}, err
	}
	// One layer: smolvm's own merge of several does not apply deletions
	// reliably (see package squash).
	if img, err = squash.Image(ctx, p.store, img, p.pw); err != nil {
		return Result{}, err
	}

	var (
		creds []pack.Credential
		pr    push.Result
	)
	if req.Registry == "" {
		srv, err := registry.Start(p.store)
		if err != nil {
			return Result{}, err
		}
		defer srv.Close() //nolint:errcheck // a loopback registry whose push is over: nothing is lost
		pr, err = push.Image(ctx, p.store, img, srv.Host()+"/bottle/agent", push.Options{Auth: srv.Authenticator(), Progress: p.pw})
		if err != nil {
			return Result{}, err
		}
		creds = []pack.Credential{{Registry: srv.Host(), Username: srv.Username(), Password: srv.Password()}}
	} else {
		repo, err := name.NewRepository(req.Registry)
		if err != nil {
			return Result{}, fmt.Errorf("--registry %q is not a repository name: %w", req.Registry, err)
		}
		kc := p.keychain
		if kc == nil {
			kc = authn.NewMultiKeychain()
		}
		user, pass, err := push.BasicCredentials(kc, repo.RegistryStr())
		if err != nil {
			return Result{}, err
		}
		tag := repo.Tag("bottle-" + key.ID()[:16])
		pr, err = push.Image(ctx, p.store, img, tag.String(), push.Options{Keychain: kc, Compress: true, Progress: p.pw})
		if err != nil {
			return Result{}, err
		}
		if user != "" {
			creds = []pack.Credential{{Registry: smolvmRegistry(repo.RegistryStr()), Username: user, Password: pass}}
		}
	}
	ref := pr.Ref.String()
	if pr.Ref.RegistryStr() == name.DefaultRegistry {
		// smolvm names Docker Hub "docker.io", in references and in its
		// credentials table alike.
		ref = "docker.io/" + pr.Ref.RepositoryStr() + "@" + pr.Digest.String()
	}
	res.Ref, res.BytesPushed = ref, pr.BlobBytesSent

	a, err := p.pack(ctx, key, ref, img, creds, platform)
	if err != nil {
		return Result{}, err
	}
	res.Artifact = a
	return res, nil
}

// agentImage builds the agent image or checks the given one.
func (p *Pipeline) agentImage(ctx context.Context, req Request) (string, error) {
	if req.Build == nil {
		if err := CheckImage(ctx, p.engine, req.Image); err != nil {
			return "", err
		}
		return req.Image, nil
	}
	r, err := p.builder.Build(ctx, *req.Build, p.pw)
	if err != nil {
		return "", err
	}
	return r.ImageID, nil
}

func (p *Pipeline) pack(ctx context.Context, key artifact.Key, ref string, img store.Image, creds []pack.Credential, platform string) (_ artifact.Artifact, err error) {
	var env []string
	if len(creds) > 0 {
		cfg, err := pack.WriteConfig("", creds)
		if err != nil {
			return artifact.Artifact{}, err
		}
		defer func() {
			// The config holds registry credentials: a copy left behind
			// is the user's to know about.
			if rerr := cfg.Remove(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("removing the smolvm config with registry credentials: %w", rerr))
			}
		}()
		env = cfg.Env
	}
	lines := display.Lines(p.pw, display.StagePack, "smolvm")
	defer lines.Close()
	p.pw.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Working, Text: "smolvm pack create --image " + ref})
	a, err := p.cache.Create(key, ref, img.Blobs(), func(output string) error {
		req := pack.Request{
			Image:    ref,
			Output:   output,
			Platform: platform,
			NoProxy:  []string{"127.0.0.1", "localhost"},
			Env:      env,
			Stderr:   lines,
		}
		if err := req.Validate(); err != nil {
			return err
		}
		return p.packer.PackCreate(ctx, req)
	})
	if err != nil {
		return artifact.Artifact{}, fmt.Errorf("pack the agent image: %w", err)
	}
	p.pw.Event(display.Event{Stage: display.StagePack, ID: "smolvm", Status: display.Done, Text: "artifact " + a.Path})
	return a, nil
}

func smolvmRegistry(reg string) string {
	if reg == name.DefaultRegistry {
		return "docker.io"
	}
	return reg
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
