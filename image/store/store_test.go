package store_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/image/store"
)

func TestBlobs(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.PutBytes([]byte("hello"))
	if err != nil || !c.New || c.Size != 5 {
		t.Fatalf("put: %+v %v", c, err)
	}
	if want, _, _ := v1.SHA256(strings.NewReader("hello")); c.Digest != want {
		t.Errorf("digest %s, want %s", c.Digest, want)
	}
	if c2, err := st.PutBytes([]byte("hello")); err != nil || c2.New {
		t.Errorf("second put: %+v %v", c2, err)
	}
	if n, err := st.Stat(c.Digest); err != nil || n != 5 {
		t.Errorf("stat: %d %v", n, err)
	}
	if fi, _ := os.Stat(st.Path(c.Digest)); fi == nil {
		t.Errorf("no file at %s", st.Path(c.Digest))
	}
	other, _, _ := v1.SHA256(strings.NewReader("other"))
	if _, err := st.Put(strings.NewReader("hello!"), other); err == nil {
		t.Errorf("digest mismatch accepted")
	}
	if st.Has(other) {
		t.Errorf("mismatched blob stored")
	}
	if _, err := st.Stat(other); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing blob: %v", err)
	}
	if _, err := st.Open(v1.Hash{Algorithm: "sha256", Hex: "../../etc/passwd"}); err == nil {
		t.Errorf("path traversal through a digest")
	}
	if freed, _ := st.RemoveScratch(0); freed != 0 {
		t.Errorf("scratch left: %d bytes", freed)
	}
}

func TestRecords(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := st.PutBytes([]byte("blob"))
	type rec struct{ Digest v1.Hash }
	if err := st.WriteRecord("kind", "a", rec{c.Digest}); err != nil {
		t.Fatal(err)
	}
	var back rec
	if err := st.ReadRecord("kind", "a", &back); err != nil || back.Digest != c.Digest {
		t.Errorf("read: %+v %v", back, err)
	}
	if err := st.ReadRecord("kind", "b", &back); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing record: %v", err)
	}
	for _, bad := range []string{"../x", "", ".hidden", "a/b"} {
		if err := st.WriteRecord("kind", bad, rec{}); err == nil {
			t.Errorf("record name %q accepted", bad)
		}
	}
	// A record pointing at a removed blob goes with PruneRecords.
	if _, err := st.Delete(c.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PruneRecords(); err != nil {
		t.Fatal(err)
	}
	if names, _ := st.Records("kind"); len(names) != 0 {
		t.Errorf("records left: %v", names)
	}
}
