package artifact_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/image/artifact"
)

var key = artifact.Key{Image: "sha256:aa", BottleLayer: "sha256:bb", Smolvm: "1.9.3", Platform: "linux/amd64"}

func writePack(output string) error {
	if strings.HasSuffix(output, ".smolmachine") {
		return errors.New("Error: --output names the executable stub")
	}
	if err := os.WriteFile(output, []byte("stub"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(output+".smolmachine", []byte("machine"), 0o644)
}

func TestKeyCoversEveryInput(t *testing.T) {
	ids := map[string]bool{key.ID(): true}
	for _, k := range []artifact.Key{
		{Image: "sha256:ab", BottleLayer: key.BottleLayer, Smolvm: key.Smolvm, Platform: key.Platform},
		{Image: key.Image, BottleLayer: "sha256:bc", Smolvm: key.Smolvm, Platform: key.Platform},
		{Image: key.Image, BottleLayer: key.BottleLayer, Smolvm: "1.9.4", Platform: key.Platform},
		{Image: key.Image, BottleLayer: key.BottleLayer, Smolvm: key.Smolvm, Platform: "linux/arm64"},
	} {
		if ids[k.ID()] {
			t.Errorf("key %+v collides", k)
		}
		ids[k.ID()] = true
	}
	if key.ID() != (artifact.Key{Image: "sha256:aa", BottleLayer: "sha256:bb", Smolvm: "1.9.3", Platform: "linux/amd64"}).ID() {
		t.Errorf("key ID is not stable")
	}
}

func TestCreateLookup(t *testing.T) {
	c, err := artifact.Open(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Lookup(artifact.Key{Image: "x"}); err == nil {
		t.Errorf("incomplete key accepted")
	}
	if _, hit, err := c.Lookup(key); hit || err != nil {
		t.Fatalf("empty cache: hit %v, %v", hit, err)
	}
	// A failed pack, or one that wrote no .smolmachine, caches nothing.
	if _, err := c.Create(key, "ref", nil, func(string) error { return errors.New("Error: pull failed") }); err == nil || !strings.Contains(err.Error(), "pull failed") {
		t.Errorf("failed pack: %v", err)
	}
	if _, err := c.Create(key, "ref", nil, func(string) error { return nil }); err == nil {
		t.Errorf("pack without output accepted")
	}
	if entries, _ := os.ReadDir(c.Dir()); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	a, err := c.Create(key, "127.0.0.1:1/bottle/agent@sha256:cc", nil, writePack)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(a.Path); err != nil || string(b) != "machine" || filepath.Base(a.Path) != "agent.smolmachine" {
		t.Errorf("artifact %s: %q %v", a.Path, b, err)
	}
	if _, err := os.Stat(strings.TrimSuffix(a.Path, ".smolmachine")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stub kept: %v", err)
	}
	got, hit, err := c.Lookup(key)
	if err != nil || !hit || got.ID != a.ID || got.Path != a.Path || got.Image != a.Image {
		t.Errorf("lookup: %+v %v %v", got, hit, err)
	}
	// Packing the same key again (a concurrent run) keeps the first.
	again, err := c.Create(key, "other", nil, writePack)
	if err != nil || again.Image != a.Image {
		t.Errorf("second create: %+v %v", again, err)
	}
	list, err := c.List()
	if err != nil || len(list) != 1 {
		t.Errorf("list: %v %v", list, err)
	}
	if n, err := c.Remove(a.ID); err != nil || n == 0 {
		t.Errorf("remove: %d %v", n, err)
	}
	if _, err := c.Remove("../x"); err == nil {
		t.Errorf("removed outside the cache")
	}
}
