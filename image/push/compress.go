package push

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// gzipRecords maps an uncompressed layer (by digest) to its gzip blob.
const gzipRecords = "gzip"

// Compressed returns img with every uncompressed layer replaced by its gzip
// form, compressing (in parallel, into the store) only the layers never
// compressed before. The diff IDs, and so the config, do not change.
func Compressed(ctx context.Context, st *store.Store, img store.Image, pw display.Writer) (store.Image, error) {
	out := store.Image{Config: img.Config, Layers: make([]store.Layer, len(img.Layers))}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, l := range img.Layers {
		if l.MediaType != store.MediaTypeLayer {
			out.Layers[i] = l
			continue
		}
		g.Go(func() error {
			var rec store.Layer
			if err := st.ReadRecord(gzipRecords, l.Digest.Hex, &rec); err == nil && st.Has(rec.Digest) {
				out.Layers[i] = rec
				return nil
			}
			c, err := gzipLayer(ctx, st, l, pw)
			if err != nil {
				return err
			}
			out.Layers[i] = c
			return st.WriteRecord(gzipRecords, l.Digest.Hex, c)
		})
	}
	if err := g.Wait(); err != nil {
		return store.Image{}, err
	}
	return out, nil
}

func gzipLayer(ctx context.Context, st *store.Store, l store.Layer, pw display.Writer) (store.Layer, error) {
	id := "layer " + l.Digest.Hex[:12]
	pw.Event(display.Event{Stage: display.StagePush, ID: id, Status: display.Working, Text: "compressing", Total: l.Size})
	src, err := st.Open(l.Digest)
	if err != nil {
		return store.Layer{}, err
	}
	defer src.Close() //nolint:errcheck // only read
	w, err := st.NewWriter()
	if err != nil {
		return store.Layer{}, err
	}
	// BestSpeed: the layer crosses a network once; most of the win of
	// compression comes at the fastest level.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		w.Abort()
		return store.Layer{}, err
	}
	if _, err := io.Copy(zw, store.ContextReader(ctx, src)); err != nil {
		w.Abort()
		return store.Layer{}, fmt.Errorf("compress layer %s: %w", l.Digest, err)
	}
	if err := zw.Close(); err != nil {
		w.Abort()
		return store.Layer{}, err
	}
	c, err := w.Commit(v1.Hash{})
	if err != nil {
		return store.Layer{}, err
	}
	pw.Event(display.Event{Stage: display.StagePush, ID: id, Status: display.Done, Text: "compressed", Current: c.Size})
	return store.Layer{MediaType: store.MediaTypeLayerGzip, Digest: c.Digest, Size: c.Size, DiffID: l.DiffID}, nil
}
