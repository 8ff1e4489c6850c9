//go:build e2e

package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/export"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/image/registry"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// The pull helper runs in a separate process (this test binary re-executed),
// as smolvm's crane would: it knows only a reference and credentials.
const pullEnv = "DOCKER_BOTTLE_TEST_PULL"

func TestMain(m *testing.M) {
	if os.Getenv(pullEnv) != "" {
		if err := pullHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "pull helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type pulled struct {
	Digest       string            `json:"digest"`
	ConfigDigest string            `json:"config_digest"`
	Layers       []string          `json:"layers"`
	MediaTypes   []string          `json:"media_types"`
	DiffIDs      []string          `json:"diff_ids"`
	Files        map[string][]byte `json:"files"`
	Links        map[string]string `json:"links"`
}

func pullHelper() error {
	ref, err := name.ParseReference(os.Getenv(pullEnv))
	if err != nil {
		return err
	}
	auth := &authn.Basic{Username: os.Getenv(pullEnv + "_USER"), Password: os.Getenv(pullEnv + "_PASSWORD")}
	img, err := remote.Image(ref, remote.WithAuth(auth))
	if err != nil {
		return err
	}
	var out pulled
	d, err := img.Digest()
	if err != nil {
		return err
	}
	out.Digest = d.String()
	cd, err := img.ConfigName()
	if err != nil {
		return err
	}
	out.ConfigDigest = cd.String()
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	for _, l := range m.Layers {
		out.Layers = append(out.Layers, l.Digest.String())
		out.MediaTypes = append(out.MediaTypes, string(l.MediaType))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	for _, h := range cf.RootFS.DiffIDs {
		out.DiffIDs = append(out.DiffIDs, h.String())
	}
	// Every layer blob is downloaded and checked against its digest by
	// reading it whole through the flattened filesystem.
	out.Files, out.Links = map[string][]byte{}, map[string]string{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			out.Files["/"+strings.TrimPrefix(h.Name, "/")] = b
		case tar.TypeSymlink:
			out.Links["/"+strings.TrimPrefix(h.Name, "/")] = h.Linkname
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func pullElsewhere(t *testing.T, ref string, srv *registry.Server) pulled {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), pullEnv+"="+ref, pullEnv+"_USER="+srv.Username(), pullEnv+"_PASSWORD="+srv.Password())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("pull %s from another process: %v\n%s", ref, err, stderr.String())
	}
	var p pulled
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("pull helper output: %v", err)
	}
	return p
}

// testImage builds a multi-layer FROM scratch image with the classic
// builder: two static binaries, a distribution-style CA bundle reached
// through a symlink too, and a data file.
type testImage struct {
	tag, id  string
	hello    []byte
	bundle   []byte
	dataFile []byte
}

func buildTestImage(t *testing.T, ctx context.Context, eng build.ClassicEngine, tag string) testImage {
	t.Helper()
	bin := t.TempDir()
	hello, err := os.ReadFile(testenv.StaticBinary(t, bin, "hello", "hello from the bottle\n"))
	if err != nil {
		t.Fatal(err)
	}
	world, err := os.ReadFile(testenv.StaticBinary(t, bin, "world", "world\n"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := testenv.CA(t, "distribution root")
	data := []byte("some data\n")
	dir := testenv.Context(t, strings.Join([]string{
		"FROM scratch",
		"COPY hello /bin/hello",
		"COPY world /bin/world",
		"COPY etc/ /etc/",
		"COPY data.txt /data/data.txt",
		`CMD ["/bin/hello"]`,
	}, "\n")+"\n", map[string][]byte{
		"hello": hello, "world": world, "data.txt": data,
		"etc/ssl/certs/ca-certificates.crt": bundle,
	})
	if err := os.Symlink("certs/ca-certificates.crt", filepath.Join(dir, "etc/ssl/cert.pem")); err != nil {
		t.Fatal(err)
	}
	res, err := build.Classic{Engine: eng}.Build(ctx, build.Options{
		ContextDir: dir, Tag: tag, Labels: map[string]string{testenv.Label: "1"},
	}, display.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return testImage{tag: tag, id: res.ImageID, hello: hello, bundle: bundle, dataFile: data}
}

// TestEmbeddedRegistryRoundTrip is the pipeline's main proof on the real
// engine: build, export, bottle layer, push to the embedded registry, pull
// from another process, compare; then push again and move nothing.
func TestEmbeddedRegistryRoundTrip(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	ti := buildTestImage(t, ctx, eng, testenv.Tag(t, eng, "roundtrip"))
	insp, err := eng.ImageInspect(ctx, ti.id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(insp.RootFS.Layers); n < 4 {
		t.Fatalf("test image has %d layers, want at least 4", n)
	}

	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	exp, err := export.Image(ctx, eng, st, ti.tag, display.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if exp.ID != ti.id || exp.BytesRead == 0 || exp.BytesStored == 0 {
		t.Fatalf("export: id %s (want %s), read %d, stored %d", exp.ID, ti.id, exp.BytesRead, exp.BytesStored)
	}
	if got := exp.Image.ConfigDigest().String(); got != ti.id {
		t.Errorf("exported config digest %s, engine image ID %s", got, ti.id)
	}
	for i, l := range exp.Image.Layers {
		if l.MediaType != store.MediaTypeLayer || l.Digest.String() != insp.RootFS.Layers[i] {
			t.Errorf("layer %d: %s %s, want uncompressed %s", i, l.MediaType, l.Digest, insp.RootFS.Layers[i])
		}
	}

	ca := testenv.CA(t, "bottle CA")
	spec := layer.Spec{CA: ca, Files: []layer.File{{Path: "/etc/bottle/hello.txt", Content: []byte("hi\n"), Mode: 0o640, UID: 1000, GID: 1000}}}
	img, bl, err := layer.Add(st, exp.ID, exp.Image, spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/ssl/certs/ca-certificates.crt"}; fmt.Sprint(bl.Bundles) != fmt.Sprint(want) {
		t.Errorf("CA appended to %v, want %v (cert.pem is a symlink to it)", bl.Bundles, want)
	}

	srv, err := registry.Start(st)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pr, err := push.Image(ctx, st, img, srv.Host()+"/bottle/agent", push.Options{Auth: srv.Authenticator()})
	if err != nil {
		t.Fatal(err)
	}
	// Blobs were written into the store by the export, so nothing but the
	// config crossed the registry.
	if pr.BlobBytesSent > int64(len(img.Config)) {
		t.Errorf("first push sent %d blob bytes; layers should have been in the store already", pr.BlobBytesSent)
	}

	got := pullElsewhere(t, pr.Ref.String(), srv)
	if got.Digest != pr.Digest.String() {
		t.Errorf("pulled digest %s, pushed %s", got.Digest, pr.Digest)
	}
	if got.ConfigDigest != img.ConfigDigest().String() {
		t.Errorf("pulled config %s, want %s", got.ConfigDigest, img.ConfigDigest())
	}
	wantDiffIDs := append(append([]string{}, insp.RootFS.Layers...), bl.Layer.DiffID.String())
	if fmt.Sprint(got.DiffIDs) != fmt.Sprint(wantDiffIDs) || fmt.Sprint(got.Layers) != fmt.Sprint(wantDiffIDs) {
		t.Errorf("pulled layers %v / diff IDs %v, want %v (uncompressed: digest = diff ID)", got.Layers, got.DiffIDs, wantDiffIDs)
	}
	for _, mt := range got.MediaTypes {
		if mt != string(store.MediaTypeLayer) {
			t.Errorf("pulled layer media type %s, want %s", mt, store.MediaTypeLayer)
		}
	}
	checkFile := func(p string, want []byte) {
		t.Helper()
		if !bytes.Equal(got.Files[p], want) {
			t.Errorf("pulled %s: %d bytes, want %d bytes (%q...)", p, len(got.Files[p]), len(want), head(got.Files[p]))
		}
	}
	checkFile("/bin/hello", ti.hello)
	checkFile("/data/data.txt", ti.dataFile)
	checkFile("/etc/ssl/certs/ca-certificates.crt", append(append([]byte{}, ti.bundle...), ca...))
	checkFile(layer.CAFile, ca)
	checkFile("/etc/bottle/hello.txt", []byte("hi\n"))
	if got.Links["/etc/ssl/cert.pem"] != "certs/ca-certificates.crt" {
		t.Errorf("symlink /etc/ssl/cert.pem = %q, want it kept", got.Links["/etc/ssl/cert.pem"])
	}
	// The pulled binary still runs.
	exe := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(exe, got.Files["/bin/hello"], 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe).Output(); err != nil || string(out) != "hello from the bottle\n" {
		t.Errorf("pulled /bin/hello: %q, %v", out, err)
	}

	// Second run, new registry process state, same store: nothing moves.
	srv.Close()
	exp2, err := export.Image(ctx, eng, st, ti.tag, display.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if exp2.BytesRead != 0 || exp2.BytesStored != 0 {
		t.Errorf("second export read %d bytes from the engine and stored %d, want 0", exp2.BytesRead, exp2.BytesStored)
	}
	img2, _, err := layer.Add(st, exp2.ID, exp2.Image, spec)
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := registry.Start(st)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	pr2, err := push.Image(ctx, st, img2, srv2.Host()+"/bottle/agent", push.Options{Auth: srv2.Authenticator()})
	if err != nil {
		t.Fatal(err)
	}
	if pr2.Digest != pr.Digest {
		t.Errorf("second push digest %s, first %s: the bottle layer is not deterministic", pr2.Digest, pr.Digest)
	}
	if pr2.BlobBytesSent != 0 || srv2.Stats().BlobBytesReceived != 0 {
		t.Errorf("second push sent %d blob bytes (registry received %d), want 0", pr2.BlobBytesSent, srv2.Stats().BlobBytesReceived)
	}
	if srv.Stats().BlobBytesServed == 0 {
		t.Errorf("the pull served no blob bytes")
	}
}

func head(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
