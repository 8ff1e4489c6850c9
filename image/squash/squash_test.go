package squash_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/squash"
	"github.com/docker-bottle/docker-bottle/image/store"
)

type entry struct {
	name, body string
	mode       int64
	dir        bool
}

func putLayer(t *testing.T, st *store.Store, entries []entry) store.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Uid: 1000, Gid: 1000}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := st.PutBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return store.Layer{MediaType: store.MediaTypeLayer, Digest: c.Digest, Size: c.Size, DiffID: c.Digest}
}

// TestSquashAppliesDeletions: what an upper layer deleted (a whiteout) or
// replaced (an opaque directory) is gone from the one layer smolvm packs,
// which its own cp -a merge does not guarantee.
func TestSquashAppliesDeletions(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := putLayer(t, st, []entry{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/secret", body: "token", mode: 0o600},
		{name: "bin/", dir: true, mode: 0o755},
		{name: "bin/tool", body: "#!", mode: 0o4755},
		{name: "opaque/", dir: true, mode: 0o755},
		{name: "opaque/a", body: "a", mode: 0o644},
	})
	upper := putLayer(t, st, []entry{
		{name: "etc/.wh.secret", mode: 0o644},
		{name: "bin/.wh.tool", mode: 0o644},
		{name: "opaque/.wh..wh..opq", mode: 0o644},
		{name: "opaque/c", body: "c", mode: 0o644},
	})
	bottle := putLayer(t, st, []entry{{name: "bottle/helper", body: "h", mode: 0o755}})
	cfg, _ := json.Marshal(v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: v1.Config{User: "1000", Env: []string{"A=b"}},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{base.DiffID, upper.DiffID, bottle.DiffID}},
		History: []v1.History{{CreatedBy: "base"}, {CreatedBy: "upper"}, {CreatedBy: "bottle"}}})
	img := store.Image{Config: cfg, Layers: []store.Layer{base, upper, bottle}}

	out, err := squash.Image(context.Background(), st, img, display.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Layers) != 1 {
		t.Fatalf("%d layers", len(out.Layers))
	}
	f, err := st.Open(out.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	modes := map[string]int64{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
		modes[strings.TrimSuffix(h.Name, "/")] = h.Mode
	}
	sort.Strings(names)
	got := strings.Join(names, " ")
	for _, gone := range []string{"etc/secret", "bin/tool", "opaque/a", ".wh."} {
		if strings.Contains(got, gone) {
			t.Errorf("%s survived the squash: %s", gone, got)
		}
	}
	for _, kept := range []string{"opaque/c", "bottle/helper", "etc"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%s is missing: %s", kept, got)
		}
	}
	if modes["bottle/helper"] != 0o755 {
		t.Errorf("mode of bottle/helper: %o", modes["bottle/helper"])
	}

	c, err := out.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RootFS.DiffIDs) != 1 || c.RootFS.DiffIDs[0] != out.Layers[0].DiffID || len(c.History) != 1 ||
		c.Config.User != "1000" || c.Config.Env[0] != "A=b" {
		t.Errorf("config: %+v", c)
	}
	if !st.Has(out.ConfigDigest()) {
		t.Error("the new config is not in the store")
	}

	// The same stack again reuses the flattened layer.
	again, err := squash.Image(context.Background(), st, img, display.WriterFunc(func(e display.Event) {
		t.Errorf("flattened again: %+v", e)
	}))
	if err != nil || again.Layers[0].Digest != out.Layers[0].Digest {
		t.Errorf("again: %v %v", again.Layers, err)
	}
}
