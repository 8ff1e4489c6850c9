package bottles

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// sharedArtifact packs an artifact of one blob into the cache shared by
// all engines, as plugins before the per-engine cache did.
func sharedArtifact(t *testing.T, cacheDir, image string) (artifact.Artifact, v1.Hash) {
	t.Helper()
	st, err := store.Open(filepath.Join(cacheDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := artifact.Open(filepath.Join(cacheDir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("layer of " + image)
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(bytes.NewReader(data), h); err != nil {
		t.Fatal(err)
	}
	key := artifact.Key{Image: "sha256:" + image, BottleLayer: "sha256:bb", Smolvm: "1.32.2", Platform: "linux/amd64"}
	a, err := c.Create(key, "127.0.0.1:1/bottle/agent@sha256:"+image, []v1.Hash{h}, func(out string) error {
		return os.WriteFile(out+".smolmachine", []byte("machine"), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

// TestPruneFreesTheSharedCache: the cache that older plugins kept for all
// engines at once is pruned like an engine's (a machine's artifact and
// its blobs stay), and goes once nothing in it is used.
func TestPruneFreesTheSharedCache(t *testing.T) {
	cacheDir := t.TempDir()
	used, usedBlob := sharedArtifact(t, cacheDir, "aa")
	unused, unusedBlob := sharedArtifact(t, cacheDir, "cc")
	st, err := store.Open(filepath.Join(cacheDir, "images"))
	if err != nil {
		t.Fatal(err)
	}

	rep, err := pruneSharedCache(cacheDir, func(a artifact.Artifact) bool { return a.Path == used.Path })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Artifacts) != 1 || rep.Artifacts[0] != unused.ID || rep.Blobs != 1 || rep.BytesFreed == 0 {
		t.Errorf("first prune: %+v, want only %s and its blob", rep, unused.ID)
	}
	if _, err := os.Stat(used.Path); err != nil || !st.Has(usedBlob) || st.Has(unusedBlob) {
		t.Errorf("the used artifact or its blob went, or the unused blob stayed: %v", err)
	}

	if _, err := pruneSharedCache(cacheDir, func(artifact.Artifact) bool { return false }); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"images", "artifacts"} {
		if _, err := os.Stat(filepath.Join(cacheDir, dir)); !os.IsNotExist(err) {
			t.Errorf("the shared cache's %s dir is still there: %v", dir, err)
		}
	}
	// Nothing to prune is no error and makes nothing.
	if rep, err := pruneSharedCache(cacheDir, nil); err != nil || len(rep.Artifacts) != 0 || exists(filepath.Join(cacheDir, "images")) {
		t.Errorf("prune of no shared cache: %+v %v", rep, err)
	}
}
