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

	"github.com/BurntSushi/toml"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/progress"
	"github.com/docker-bottle/docker-bottle/image/push"
)

// pullingPacker plays smolvm's pack create in-process, following
// smolvm-cli.md: credentials only from SMOLVM_CONFIG (password_env), the
// registry key equal to the reference's registry part, a real pull of the
// image, the artifact at OUTPUT.smolmachine.
type pullingPacker struct {
	version string
	fail    string

	mu      sync.Mutex
	calls   []pack.Request
	configs []string
}

func (p *pullingPacker) Version(context.Context) (string, error) { return p.version, nil }

func (p *pullingPacker) PackCreate(ctx context.Context, req pack.Request) error {
	p.mu.Lock()
	p.calls = append(p.calls, req)
	p.mu.Unlock()
	if p.fail != "" {
		return errors.New("smolvm pack create: exit status 1: Error: " + p.fail)
	}
	env := map[string]string{}
	for _, kv := range req.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	ref, err := name.ParseReference(req.Image)
	if err != nil {
		return err
	}
	var auth authn.Authenticator = authn.Anonymous
	if path := env["SMOLVM_CONFIG"]; path != "" {
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
		var cfg struct {
			Images struct {
				Registries map[string]struct {
					Username    string `toml:"username"`
					Password    string `toml:"password"`
					PasswordEnv string `toml:"password_env"`
				} `toml:"registries"`
			} `toml:"images"`
		}
		if _, err := toml.DecodeFile(path, &cfg); err != nil {
			return fmt.Errorf("Error: config operation failed: %w", err)
		}
		if r, ok := cfg.Images.Registries[ref.Context().RegistryStr()]; ok {
			if r.Password != "" {
				return errors.New("the plugin wrote a password into SMOLVM_CONFIG")
			}
			auth = &authn.Basic{Username: r.Username, Password: env[r.PasswordEnv]}
		}
	}
	img, err := remote.Image(ref, remote.WithAuth(auth), remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("Error: agent operation failed: pull image: crane manifest failed: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		rc.Close()
	}
	d, _ := img.Digest()
	if err := os.WriteFile(req.Output, []byte("stub"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(pack.ArtifactPath(req.Output), []byte("packed "+d.String()+"\n"), 0o644)
}

func (p *pullingPacker) count() int {
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
	packer := &pullingPacker{version: "1.9.3"}
	var events []progress.Event
	var mu sync.Mutex
	pw := progress.WriterFunc(func(e progress.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
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
	if b, err := os.ReadFile(r1.Artifact.Path); err != nil || !strings.Contains(string(b), "packed sha256:") {
		t.Fatalf("artifact %s: %q, %v", r1.Artifact.Path, b, err)
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
	for _, a := range call.Args() {
		for _, kv := range call.Env {
			if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DOCKER_BOTTLE_REGISTRY_PASSWORD") && strings.Contains(a, v) {
				t.Errorf("the registry password is on smolvm's command line")
			}
		}
	}
	sawPack := false
	for _, e := range events {
		sawPack = sawPack || (e.Stage == progress.StagePack && e.Status == progress.Done)
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
	packer := &pullingPacker{version: "1.9.3"}
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
