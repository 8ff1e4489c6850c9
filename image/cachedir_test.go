package image

import (
	"path/filepath"
	"strings"
	"testing"
)

// Two engines' IDs get two cache dirs, below the cache dir whatever the
// IDs hold, and a blob cached for one engine is not in the other's cache;
// the same engine finds its own again.
func TestEachEngineHasItsOwnImageCache(t *testing.T) {
	cacheDir := t.TempDir()
	const local, remote = "7TRN:IPZB:QYBB:VPBQ:UWU3:KBRZ:3NXI:NRUY:XNLA:XKXO:35HH:ZJCB", "../../remote-engine/id"
	dirs := map[string]string{}
	for _, id := range []string{local, remote} {
		d, err := EngineCacheDir(cacheDir, id)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(d) != filepath.Join(cacheDir, "engines") {
			t.Errorf("engine %q caches in %s, not in its own dir below %s/engines", id, d, cacheDir)
		}
		dirs[id] = d
	}
	if dirs[local] == dirs[remote] {
		t.Fatalf("two engines share the cache dir %s", dirs[local])
	}
	if again, _ := EngineCacheDir(cacheDir, local); again != dirs[local] {
		t.Errorf("the same engine got %s, then %s", dirs[local], again)
	}
	if _, err := EngineCacheDir(cacheDir, ""); err == nil || !strings.Contains(err.Error(), "no ID") {
		t.Errorf("an engine without an ID: %v", err)
	}

	open := func(id string) *Pipeline {
		p, err := New(nil, nil, dirs[id])
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := open(local).Store().PutBytes([]byte("a layer the local engine exported"))
	if err != nil {
		t.Fatal(err)
	}
	if open(remote).Store().Has(c.Digest) {
		t.Error("the remote engine's cache holds the local engine's blob")
	}
	if !open(local).Store().Has(c.Digest) {
		t.Error("the local engine's cache lost its blob")
	}
}
