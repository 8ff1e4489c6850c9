package probeimage

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/probe/internal/probetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	probetest.Cleanup()
	os.Exit(code)
}

func TestImageConfig(t *testing.T) {
	bin := []byte("not really a binary")
	tag, img, err := FromBinary(bin, "arm64")
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
