package bringup

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
)

// TestArm64BundleTarballWithoutEngine assembles the arm64 bundle image
// from the binary the plugin embeds, as a plugin on any OS would, and reads
// the tarball back: linux/arm64 config, an aarch64 ELF at /bottle-bundle,
// the serve entrypoint, and a tag derived from the binary.
func TestArm64BundleTarballWithoutEngine(t *testing.T) {
	tag, img, err := bundleImage.Image("arm64")
	if errors.Is(err, bundlebin.ErrMissing) {
		t.Fatalf("%v: run `make bundle-bins` (make test does) before go test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tag, ImageRepo+":") || !strings.HasSuffix(tag, "-arm64") {
		t.Errorf("tag %q", tag)
	}
	var buf bytes.Buffer
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.Write(ref, img, &buf); err != nil {
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
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Config.Entrypoint[0] != BinaryPath || cf.Config.Cmd[0] != "serve" {
		t.Errorf("config %+v", cf.Config)
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != strings.TrimPrefix(BinaryPath, "/") {
			continue
		}
		found = true
		data, _ := io.ReadAll(tr)
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("/bottle-bundle is not ELF: %v", err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("machine %v, want aarch64", f.Machine)
		}
		if h.Mode&0o111 == 0 {
			t.Errorf("mode %o is not executable", h.Mode)
		}
	}
	if !found {
		t.Fatal("no /bottle-bundle in the layer")
	}
	// Same binary, same tag and digest; amd64 differs.
	tag2, img2, _ := bundleImage.Image("arm64")
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if tag2 != tag || d1 != d2 {
		t.Error("assembling twice gave another image")
	}
	if tag3, _, err := bundleImage.Image("amd64"); err != nil || tag3 == tag {
		t.Errorf("amd64: %q %v", tag3, err)
	}
	if _, _, err := bundleImage.Image("s390x"); err == nil || !strings.Contains(err.Error(), "linux/amd64 and linux/arm64") {
		t.Errorf("unsupported arch: %v", err)
	}
}
