package probeimage

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// fromBinary assembles the probe image from a given probe binary.
func fromBinary(bin []byte, arch string) (string, v1.Image, error) {
	b := probeImage
	b.Read = func(string) ([]byte, error) { return bin, nil }
	return b.Image(arch)
}

func TestImageConfig(t *testing.T) {
	bin := []byte("not really a binary")
	tag, img, err := fromBinary(bin, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	if tag != Repo+":"+hex.EncodeToString(sum[:])[:16]+"-arm64" {
		t.Errorf("tag %s", tag)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath, "probe"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("config %+v", cf.Config)
	}
	if _, _, err := probeImage.Image("riscv64"); err == nil || !strings.Contains(err.Error(), "linux/amd64 and linux/arm64") {
		t.Errorf("an unsupported architecture: %v", err)
	}
}
