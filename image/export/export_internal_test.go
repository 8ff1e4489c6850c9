package export

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/store"
)

type entry struct {
	name, body, link string
}

func archive(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return &buf
}

func layerTar(t *testing.T, file string) string {
	return archive(t, entry{name: file, body: "content of " + file}).String()
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func config(diffIDs ...string) string {
	var ids []string
	for _, d := range diffIDs {
		ids = append(ids, fmt.Sprintf(`"sha256:%s"`, d))
	}
	return fmt.Sprintf(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[%s]}}`, strings.Join(ids, ","))
}

// The legacy format of `docker save` (classic store): layers first as
// <id>/layer.tar, a repeated layer as a symlink, manifest.json last.
func TestLegacyArchive(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := layerTar(t, "a"), layerTar(t, "b")
	cfg := config(sum(a), sum(b), sum(a))
	ar := archive(t,
		entry{name: "111/layer.tar", body: a},
		entry{name: "111/json", body: "{}"},
		entry{name: "222/layer.tar", body: b},
		entry{name: "333/layer.tar", link: "../111/layer.tar"},
		entry{name: sum(cfg) + ".json", body: cfg},
		entry{name: "manifest.json", body: fmt.Sprintf(`[{"Config":"%s.json","RepoTags":null,"Layers":["111/layer.tar","222/layer.tar","333/layer.tar"]}]`, sum(cfg))},
		entry{name: "repositories", body: "{}"},
	)
	var events []display.Event
	img, stored, err := fromSave(ar, st, display.WriterFunc(func(e display.Event) { events = append(events, e) }))
	if err != nil {
		t.Fatal(err)
	}
	// Each blob's progress and its end are one line to a display: the same
	// ID.
	working := map[string]bool{}
	dones := 0
	for _, e := range events {
		switch e.Status {
		case display.Working:
			working[e.ID] = true
		case display.Done:
			dones++
			if !working[e.ID] {
				t.Errorf("done event %+v has no working event with its ID (%v)", e, working)
			}
		}
	}
	if dones == 0 {
		t.Errorf("no done events: %+v", events)
	}
	if img.ConfigDigest().Hex != sum(cfg) || len(img.Layers) != 3 {
		t.Fatalf("image %+v", img)
	}
	for i, want := range []string{a, b, a} {
		l := img.Layers[i]
		if l.Digest.Hex != sum(want) || l.DiffID != l.Digest || l.MediaType != store.MediaTypeLayer || l.Size != int64(len(want)) {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	if want := int64(len(a) + len(b) + len(cfg)); stored != want {
		t.Errorf("stored %d bytes, want %d (each blob once)", stored, want)
	}
	if len(st.Missing(img)) != 0 {
		t.Errorf("blobs missing from the store: %v", st.Missing(img))
	}
}

// The OCI layout that engines >= 25 write, with a gzip layer as the
// containerd image store keeps it: it is passed on compressed, as it is.
func TestOCIArchiveWithCompressedLayer(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plain := layerTar(t, "x")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	cfg := config(sum(plain))
	ar := archive(t,
		entry{name: "blobs/sha256/" + sum(gz.String()), body: gz.String()},
		entry{name: "blobs/sha256/" + sum(cfg), body: cfg},
		entry{name: "index.json", body: "{}"},
		entry{name: "oci-layout", body: `{"imageLayoutVersion":"1.0.0"}`},
		entry{name: "manifest.json", body: fmt.Sprintf(`[{"Config":"blobs/sha256/%s","Layers":["blobs/sha256/%s"]}]`, sum(cfg), sum(gz.String()))},
	)
	img, _, err := fromSave(ar, st, display.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := img.Layers[0]
	if l.MediaType != store.MediaTypeLayerGzip || l.Digest.Hex != sum(gz.String()) || l.DiffID.Hex != sum(plain) {
		t.Errorf("layer %+v", l)
	}
	if img.ConfigDigest().Hex != sum(cfg) {
		t.Errorf("config digest %s", img.ConfigDigest())
	}
}

func TestBadArchives(t *testing.T) {
	a := layerTar(t, "a")
	for name, ar := range map[string]*bytes.Buffer{
		"no manifest": archive(t, entry{name: "111/layer.tar", body: a}),
		"two images":  archive(t, entry{name: "manifest.json", body: `[{},{}]`}),
		"no config":   archive(t, entry{name: "manifest.json", body: `[{"Config":"x.json","Layers":[]}]`}),
		"layer count": archive(t,
			entry{name: "111/layer.tar", body: a},
			entry{name: "c.json", body: config()},
			entry{name: "manifest.json", body: `[{"Config":"c.json","Layers":["111/layer.tar"]}]`}),
		"wrong diff id": archive(t,
			entry{name: "111/layer.tar", body: a},
			entry{name: "c.json", body: config(sum("other"))},
			entry{name: "manifest.json", body: `[{"Config":"c.json","Layers":["111/layer.tar"]}]`}),
		"missing layer": archive(t,
			entry{name: "c.json", body: config(sum(a))},
			entry{name: "manifest.json", body: `[{"Config":"c.json","Layers":["111/layer.tar"]}]`}),
		"not a tar": bytes.NewBufferString(strings.Repeat("x", 2048)),
	} {
		st, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fromSave(ar, st, display.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
