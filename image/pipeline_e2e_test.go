//go:build e2e

package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// fakePacker runs the contract fake smolvm (smolvm/fakesmolvm) through the
// plugin's own adapter: the fake reads credentials only from SMOLVM_CONFIG
// and password_env, really pulls the image from the registry it is given,
// and writes OUTPUT.smolmachine, as smolvm-cli.md says smolvm does. The
// wrapper records each request and can inject a smolvm failure.
type fakePacker struct {
	fake, state string
	version     string
	fail        string

	mu      sync.Mutex
	calls   []pack.Request
	configs []string
}

func newFakePacker(t *testing.T, version string) *fakePacker {
	t.Helper()
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fakePacker{fake: fake, state: t.TempDir(), version: version}
}

func (p *fakePacker) smolvm() *pack.Smolvm {
	return pack.NewSmolvm(p.fake, smolvm.WithEnv("SMOLVM_FAKE_VERSION="+p.version, "SMOLVM_FAKE_STATE="+p.state))
}

func (p *fakePacker) Version(ctx context.Context) (string, error) { return p.smolvm().Version(ctx) }

func (p *fakePacker) PackCreate(ctx context.Context, req pack.Request) error {
	p.mu.Lock()
	p.calls = append(p.calls, req)
	p.mu.Unlock()
	if p.fail != "" {
		return errors.New("smolvm pack create: exit status 1: Error: " + p.fail)
	}
	for _, kv := range req.Env {
		path, ok := strings.CutPrefix(kv, "SMOLVM_CONFIG=")
		if !ok {
			continue
		}
		p.mu.Lock()
		p.configs = append(p.configs, path)
		p.mu.Unlock()
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("SMOLVM_CONFIG mode %v, want 0600", fi.Mode().Perm())
		}
		raw, _ := os.ReadFile(path)
		for _, e := range req.Env {
			if k, v, _ := strings.Cut(e, "="); k != "SMOLVM_CONFIG" && strings.Contains(string(raw), v) {
				return errors.New("the plugin wrote a password into SMOLVM_CONFIG")
			}
		}
	}
	return p.smolvm().PackCreate(ctx, req)
}

func (p *fakePacker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func TestPipelineRunCachePrune(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	bin := t.TempDir()
	hello, err := os.ReadFile(testenv.StaticBinary(t, bin, "hello", "hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.Context(t, "FROM scratch\nARG GREETING=none\nCOPY hello /bin/hello\nCOPY extra.txt /extra.txt\nLABEL greeting=$GREETING\n",
		map[string][]byte{"hello": hello, "extra.txt": []byte("extra\n")})
	tag := testenv.Tag(t, eng, "pipeline")
	packer := newFakePacker(t, "1.9.3")
	var events []display.Event
	var mu sync.Mutex
	pw := display.WriterFunc(func(e display.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	cacheDir := t.TempDir()
	p, err := image.New(eng, packer, cacheDir, image.WithProgress(pw))
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.CA(t, "bottle CA")
	req := image.Request{
		Build:  &build.Options{ContextDir: dir, Tag: tag, BuildArgs: map[string]string{"GREETING": "hi"}, Labels: map[string]string{testenv.Label: "1"}},
		Bottle: layer.Spec{CA: ca},
	}

	// Cold.
	r1, err := p.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r1.CacheHit || r1.BytesExported == 0 || packer.count() != 1 {
		t.Fatalf("cold run: hit %v, exported %d, packs %d", r1.CacheHit, r1.BytesExported, packer.count())
	}
	insp, err := eng.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if insp.ID != r1.ImageID || insp.Config.Labels["greeting"] != "hi" {
		t.Errorf("built image %s labels %v; result says %s", insp.ID, insp.Config.Labels, r1.ImageID)
	}
	m, err := fakestate.ReadManifest(r1.Artifact.Path)
	if err != nil {
		t.Fatalf("artifact %s: %v", r1.Artifact.Path, err)
	}
	if !strings.HasPrefix(r1.Artifact.Path, cacheDir) {
		t.Errorf("artifact %s is outside the cache dir %s", r1.Artifact.Path, cacheDir)
	}
	call := packer.calls[0]
	if !strings.HasPrefix(call.Image, "127.0.0.1:") || !strings.Contains(call.Image, "@sha256:") {
		t.Errorf("packed %q, want a 127.0.0.1:PORT/...@sha256: reference", call.Image)
	}
	if strings.HasSuffix(call.Output, ".smolmachine") || call.Platform == "" {
		t.Errorf("pack request %+v", call)
	}
	if _, err := os.Stat(packer.configs[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SMOLVM_CONFIG %s still there after the run: %v", packer.configs[0], err)
	}
	if !strings.HasSuffix(call.Image, "@"+m.Digest) || m.Image != call.Image {
		t.Errorf("the fake packed %s (%s), the pipeline asked for %s", m.Image, m.Digest, call.Image)
	}
	// smolvm got one layer (the image's two COPY layers and the bottle
	// layer, flattened): its own merge of several is lossy.
	if len(insp.RootFS.Layers) < 2 || len(r1.Artifact.Blobs) != 2 {
		t.Errorf("the image has %d layers; smolvm pulled %d blobs (config and layers), want config and one layer",
			len(insp.RootFS.Layers), len(r1.Artifact.Blobs))
	}
	sawPack := false
	for _, e := range events {
		sawPack = sawPack || (e.Stage == display.StagePack && e.Status == display.Done)
	}
	if !sawPack {
		t.Errorf("no pack progress event among %d events", len(events))
	}

	// Warm: same request, nothing exported, pushed or packed.
	r2, err := p.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.CacheHit || r2.BytesExported != 0 || r2.BytesPushed != 0 || packer.count() != 1 || r2.Artifact.ID != r1.Artifact.ID {
		t.Fatalf("warm run: hit %v, exported %d, pushed %d, packs %d", r2.CacheHit, r2.BytesExported, r2.BytesPushed, packer.count())
	}
	// agent.image instead of a Dockerfile: same content, same artifact.
	r3, err := p.Run(ctx, image.Request{Image: tag, Bottle: layer.Spec{CA: ca}})
	if err != nil {
		t.Fatal(err)
	}
	if !r3.CacheHit || r3.Artifact.ID != r1.Artifact.ID {
		t.Errorf("agent.image run: hit %v, artifact %s, want %s", r3.CacheHit, r3.Artifact.ID, r1.Artifact.ID)
	}

	// Another smolvm version is another artifact; the layers are not
	// exported or pushed again.
	packer.version = "1.9.4"
	r4, err := p.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r4.CacheHit || r4.Artifact.ID == r1.Artifact.ID || r4.BytesExported != 0 || r4.BytesPushed != 0 || packer.count() != 2 {
		t.Errorf("new smolvm: hit %v, same artifact %v, exported %d, pushed %d, packs %d",
			r4.CacheHit, r4.Artifact.ID == r1.Artifact.ID, r4.BytesExported, r4.BytesPushed, packer.count())
	}
	// Another bottle CA: another bottle layer, another artifact.
	r5, err := p.Run(ctx, image.Request{Image: tag, Bottle: layer.Spec{CA: testenv.CA(t, "other CA")}})
	if err != nil {
		t.Fatal(err)
	}
	if r5.CacheHit || r5.Artifact.Key.BottleLayer == r4.Artifact.Key.BottleLayer {
		t.Errorf("new CA: hit %v, bottle layer %s", r5.CacheHit, r5.Artifact.Key.BottleLayer)
	}

	// A failing pack surfaces smolvm's Error line and caches nothing.
	packer.version, packer.fail = "1.9.5", "agent operation failed: find libkrun: could not find libkrun library"
	if _, err := p.Run(ctx, req); err == nil || !strings.Contains(err.Error(), "could not find libkrun library") {
		t.Errorf("failing pack: %v", err)
	}
	packer.fail = ""
	arts, err := p.Cache().List()
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 3 {
		t.Errorf("%d artifacts cached, want 3", len(arts))
	}
	if tmp, _ := filepath.Glob(filepath.Join(p.Cache().Dir(), ".tmp-*")); len(tmp) != 0 {
		t.Errorf("scratch left behind: %v", tmp)
	}

	// Prune keeping r4's artifact: the others go, with the blobs only they
	// needed; r4's blobs stay and a run for it is still a hit.
	before := diskUsage(t, cacheDir)
	rep, err := p.Cache().Prune(p.Store(), artifact.PruneOptions{Keep: func(a artifact.Artifact) bool { return a.ID == r4.Artifact.ID }})
	if err != nil {
		t.Fatal(err)
	}
	after := diskUsage(t, cacheDir)
	if len(rep.Artifacts) != 2 || rep.BytesFreed <= 0 || rep.BytesFreed > before-after+4096 || before-after > rep.BytesFreed+4096 {
		t.Errorf("prune: %+v; disk went from %d to %d", rep, before, after)
	}
	if rep.Blobs == 0 {
		t.Errorf("prune removed no blob (r5's bottle layer and config were only its own)")
	}
	packer.version = "1.9.4"
	if r, err := p.Run(ctx, req); err != nil || !r.CacheHit {
		t.Errorf("after prune, kept artifact: hit %v, %v", r.CacheHit, err)
	}
	// Prune everything: the store is empty of blobs.
	if _, err := p.Cache().Prune(p.Store(), artifact.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = p.Store().Walk(func(_ v1.Hash, _ int64) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d blobs left after a full prune", n)
	}
}

func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func TestPipelineUserRegistry(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	ti := buildTestImage(t, ctx, eng, testenv.Tag(t, eng, "userreg"))
	host := testenv.AuthRegistry(t, "alice", "s3cret")
	cfg := testenv.DockerConfig(t, fmt.Sprintf(`{"credHelpers":{%q:"bottletest"}}`, host),
		testenv.Helper{Name: "bottletest", Server: host, Username: "alice", Secret: "s3cret"})
	packer := newFakePacker(t, "1.9.3")
	p, err := image.New(eng, packer, t.TempDir(), image.WithKeychain(push.Keychain(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(ctx, image.Request{Image: ti.tag, Registry: host + "/team/agent", Bottle: layer.Spec{CA: testenv.CA(t, "bottle CA")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Ref, host+"/team/agent@sha256:") || res.BytesPushed == 0 {
		t.Fatalf("packed %q after pushing %d bytes", res.Ref, res.BytesPushed)
	}
	// The packer could pull only with the credentials SMOLVM_CONFIG gave
	// it: the registry refuses anonymous pulls.
	if len(packer.configs) != 1 {
		t.Fatalf("pack got %d SMOLVM_CONFIG files", len(packer.configs))
	}
	if _, err := remote.Image(mustRef(t, res.Ref)); err == nil {
		t.Errorf("the test registry let an anonymous client pull")
	}

	// A registry for which the docker CLI holds only an identity token.
	cfg = testenv.DockerConfig(t, fmt.Sprintf(`{"auths":{%q:{"identitytoken":"opaque"}}}`, host))
	p, err = image.New(eng, packer, t.TempDir(), image.WithKeychain(push.Keychain(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(ctx, image.Request{Image: ti.tag, Registry: host + "/team/agent", Bottle: layer.Spec{}})
	if !errors.Is(err, push.ErrTokenOnly) || !strings.Contains(err.Error(), "smolvm only supports basic username/password") {
		t.Errorf("token-only credentials: %v", err)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
