// Package export copies an image out of the Docker engine into the blob
// store. It reads one `docker save` stream and writes each layer straight
// into its content-addressed file: no spool of the whole archive, no
// recompression, and nothing read when the store already holds the image.
package export

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// Engine is what export needs of the Docker engine API.
type Engine interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// recordKind names the store records that map an engine image ID to the
// image's blobs, so a later run finds them without a `docker save`.
const recordKind = "images"

// Result is an image now held by the store.
type Result struct {
	// ID is the engine's image ID.
	ID    string
	Image store.Image
	// Platform is the image's os/arch[/variant].
	Platform string
	// BytesRead counts bytes read from the engine, BytesStored bytes of
	// blobs the store did not hold before. Both are zero when the store
	// already had the image.
	BytesRead   int64
	BytesStored int64
}

// Image makes sure the store holds the image ref (a name or ID the engine
// knows) and returns it.
func Image(ctx context.Context, eng Engine, st *store.Store, ref string, pw display.Writer) (Result, error) {
	if pw == nil {
		pw = display.Discard
	}
	insp, err := eng.ImageInspect(ctx, ref)
	if err != nil {
		return Result{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	res := Result{ID: insp.ID, Platform: platform(insp.Os, insp.Architecture, insp.Variant)}
	id, err := v1.NewHash(insp.ID)
	if err != nil {
		return Result{}, fmt.Errorf("engine returned image ID %q: %w", insp.ID, err)
	}
	var rec store.Image
	if err := st.ReadRecord(recordKind, id.Hex, &rec); err == nil && len(st.Missing(rec)) == 0 {
		res.Image = rec
		pw.Event(display.Event{Stage: display.StageExport, ID: short(insp.ID), Status: display.Done, Text: "in cache"})
		return res, nil
	}

	pw.Event(display.Event{Stage: display.StageExport, ID: short(insp.ID), Status: display.Working, Text: "exporting from the engine", Total: insp.Size})
	rc, err := eng.ImageSave(ctx, []string{insp.ID})
	if err != nil {
		return Result{}, fmt.Errorf("export image %s from the engine: %w", ref, err)
	}
	defer rc.Close()
	counted := &countingReader{r: rc}
	img, stored, err := fromSave(counted, st, pw)
	if err != nil {
		return Result{}, fmt.Errorf("export image %s from the engine: %w", ref, err)
	}
	res.Image, res.BytesRead, res.BytesStored = img, counted.n, stored
	if err := st.WriteRecord(recordKind, id.Hex, img); err != nil {
		return Result{}, err
	}
	pw.Event(display.Event{Stage: display.StageExport, ID: short(insp.ID), Status: display.Done, Text: "exported", Current: counted.n})
	return res, nil
}

// saveManifest is one entry of a `docker save` manifest.json, which every
// engine writes (also beside the OCI layout of engines >= 25).
type saveManifest struct {
	Config string
	Layers []string
}

// maxMetadata bounds the non-blob entries kept in memory.
const maxMetadata = 16 << 20

// fromSave reads a `docker save` archive. Layer bodies (legacy
// `<id>/layer.tar`, or OCI `blobs/sha256/<hex>`) stream into the store as
// they come, since manifest.json, which says what they are, may come last.
func fromSave(r io.Reader, st *store.Store, pw display.Writer) (store.Image, int64, error) {
	tr := tar.NewReader(r)
	blobs := map[string]store.Committed{} // archive path -> blob
	links := map[string]string{}          // archive path -> target path
	small := map[string][]byte{}
	var stored int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return store.Image{}, 0, fmt.Errorf("read image archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			links[name] = path.Join(path.Dir(name), hdr.Linkname) //nolint:gosec // G305: a name inside the archive, looked up there; nothing is extracted to disk
		case tar.TypeLink:
			links[name] = path.Clean(hdr.Linkname)
		case tar.TypeReg:
			if isBlobEntry(name) {
				c, err := copyBlob(tr, st, name, hdr.Size, pw)
				if err != nil {
					return store.Image{}, 0, err
				}
				blobs[name] = c
				if c.New {
					stored += c.Size
				}
				continue
			}
			if hdr.Size > maxMetadata {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return store.Image{}, 0, fmt.Errorf("read image archive: %w", err)
			}
			small[name] = b
		}
	}
	resolve := func(p string) string {
		for range 16 {
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return p
	}

	var mans []saveManifest
	if err := json.Unmarshal(small["manifest.json"], &mans); err != nil {
		return store.Image{}, 0, fmt.Errorf("image archive has no readable manifest.json: %w", err)
	}
	if len(mans) != 1 {
		return store.Image{}, 0, fmt.Errorf("image archive holds %d images, expected one", len(mans))
	}
	man := mans[0]
	cfgPath := resolve(path.Clean(man.Config))
	cfg, ok := small[cfgPath]
	if !ok {
		c, found := blobs[cfgPath]
		if !found {
			return store.Image{}, 0, fmt.Errorf("image archive lacks its config %s", man.Config)
		}
		var err error
		if cfg, err = st.ReadBlob(c.Digest, maxMetadata); err != nil {
			return store.Image{}, 0, err
		}
	}
	c, err := st.PutBytes(cfg)
	if err != nil {
		return store.Image{}, 0, err
	}
	if c.New {
		stored += c.Size
	}
	img := store.Image{Config: cfg}
	cf, err := img.ConfigFile()
	if err != nil {
		return store.Image{}, 0, fmt.Errorf("image config: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(man.Layers) {
		return store.Image{}, 0, fmt.Errorf("image config lists %d layers, the archive %d", len(cf.RootFS.DiffIDs), len(man.Layers))
	}
	for i, lp := range man.Layers {
		b, ok := blobs[resolve(path.Clean(lp))]
		if !ok {
			return store.Image{}, 0, fmt.Errorf("image archive lacks layer %s", lp)
		}
		l := store.Layer{MediaType: store.SniffLayer(b.Head), Digest: b.Digest, Size: b.Size, DiffID: cf.RootFS.DiffIDs[i]}
		if l.MediaType == store.MediaTypeLayer && l.Digest != l.DiffID {
			return store.Image{}, 0, fmt.Errorf("layer %s: content digest %s does not match the config's diff ID %s", lp, l.Digest, l.DiffID)
		}
		img.Layers = append(img.Layers, l)
	}
	return img, stored, nil
}

func isBlobEntry(name string) bool {
	return path.Base(name) == "layer.tar" || strings.HasPrefix(name, "blobs/")
}

func copyBlob(r io.Reader, st *store.Store, name string, size int64, pw display.Writer) (store.Committed, error) {
	w, err := st.NewWriter()
	if err != nil {
		return store.Committed{}, err
	}
	var id string
	if strings.HasPrefix(name, "blobs/") {
		id = "sha256:" + short(path.Base(name))
	} else {
		id = short(path.Dir(name))
	}
	tick := &ticker{pw: pw, id: id, total: size}
	if _, err := w.ReadFrom(io.TeeReader(r, tick)); err != nil {
		w.Abort()
		return store.Committed{}, fmt.Errorf("read image archive: %w", err)
	}
	c, err := w.Commit(v1.Hash{})
	if err != nil {
		return c, err
	}
	text := "stored as " + short(c.Digest.String())
	if !c.New {
		text = "already in cache as " + short(c.Digest.String())
	}
	// The same ID as its progress, so a display finishes that line.
	pw.Event(display.Event{Stage: display.StageExport, ID: "layer " + id, Status: display.Done, Text: text, Current: c.Size})
	return c, nil
}

// ticker reports a blob's progress at most twice a second.
type ticker struct {
	pw    display.Writer
	id    string
	total int64
	n     int64
	last  time.Time
}

func (t *ticker) Write(p []byte) (int, error) {
	t.n += int64(len(p))
	if now := time.Now(); now.Sub(t.last) > 500*time.Millisecond {
		t.last = now
		t.pw.Event(display.Event{Stage: display.StageExport, ID: "layer " + t.id, Status: display.Working, Current: t.n, Total: t.total})
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func platform(os, arch, variant string) string {
	p := os + "/" + arch
	if variant != "" {
		p += "/" + variant
	}
	return p
}

// short abbreviates a digest or ID for progress lines.
func short(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
