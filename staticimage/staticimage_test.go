package staticimage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/docker-bottle/docker-bottle/staticimage"
)

func TestBuildIsDeterministic(t *testing.T) {
	files := []staticimage.File{{Path: "/bin/x", Mode: 0o755, Data: []byte("x")}, {Path: "/etc/y", Mode: 0o644, Data: []byte("y")}}
	a, err := staticimage.Build(files, staticimage.Config{Arch: "arm64", Entrypoint: []string{"/bin/x"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := staticimage.Build([]staticimage.File{files[1], files[0]}, staticimage.Config{Arch: "arm64", Entrypoint: []string{"/bin/x"}})
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same files in another order gave %s and %s", da, db)
	}
	c, _ := staticimage.Build(files, staticimage.Config{Arch: "amd64", Entrypoint: []string{"/bin/x"}})
	if dc, _ := c.Digest(); dc == da {
		t.Fatal("another architecture gave the same digest")
	}
	if _, err := staticimage.Build([]staticimage.File{{Path: "relative", Data: nil}}, staticimage.Config{Arch: "amd64"}); err == nil {
		t.Fatal("a relative path was accepted")
	}
	if _, err := staticimage.Build(files, staticimage.Config{}); err == nil {
		t.Fatal("no architecture was accepted")
	}
}

func TestTarballRoundTrip(t *testing.T) {
	img, err := staticimage.Build([]staticimage.File{{Path: "/a/b/c", Mode: 0o600, Data: []byte("secretless")}}, staticimage.Config{Arch: "arm64", User: "1000:1000"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(name.MustParseReference("example/test:1"), img, &buf); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "arm64" || cf.OS != "linux" || cf.Config.User != "1000:1000" {
		t.Errorf("config %+v", cf)
	}
}

// TestBinaryImage: an image of one binary is tagged after the binary's
// digest and architecture, runs it as its entrypoint, and refuses what
// Read refuses.
func TestBinaryImage(t *testing.T) {
	b := staticimage.Binary{Repo: "example/bin", Path: "/bin/x", Entrypoint: []string{"/bin/x", "serve"},
		Labels: map[string]string{"role": "image"},
		Read: func(arch string) ([]byte, error) {
			if arch == "s390x" {
				return nil, errors.New("no s390x binary")
			}
			return []byte("binary for " + arch), nil
		}}
	tag, img, err := b.Image("arm64")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("binary for arm64"))
	if want := "example/bin:" + hex.EncodeToString(sum[:])[:16] + "-arm64"; tag != want {
		t.Errorf("tag %s, want %s", tag, want)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "arm64" || !slices.Equal(cf.Config.Entrypoint, b.Entrypoint) || cf.Config.Labels["role"] != "image" {
		t.Errorf("config %+v", cf.Config)
	}
	if _, _, err := b.Image("s390x"); err == nil || !strings.Contains(err.Error(), "no s390x binary") {
		t.Errorf("a refused architecture: %v", err)
	}
}
