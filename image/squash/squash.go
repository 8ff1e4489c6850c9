// Package squash flattens an image into one layer for `smolvm pack
// create`. smolvm merges a multi-layer image inside its pack VM by copying
// each layer over the last with busybox `cp -a … || true` (source at
// v1.9.3, CONTRACT.md section 1): whiteouts are not applied reliably, so a
// file an upper layer deleted (a removed credential, a setuid binary) can
// come back in the bottle, and opaque directories merge instead of
// replacing. A one-layer image takes smolvm's single-layer path, with the
// deletions already applied here by go-containerregistry's mutate.Extract.
package squash

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// records maps a stack of layers (by their diff IDs) to its squashed layer,
// so that a stack is flattened once.
const records = "squash"

// Image returns img with its layers flattened into one uncompressed layer
// in the store (reused when this stack was flattened before). The config
// keeps everything but its rootfs and history, which now describe the one
// layer. An image of one layer is returned as it is.
func Image(ctx context.Context, st *store.Store, img store.Image, pw display.Writer) (store.Image, error) {
	if len(img.Layers) <= 1 {
		return img, nil
	}
	h := sha256.New()
	for _, l := range img.Layers {
		fmt.Fprintln(h, l.DiffID)
	}
	key := hex.EncodeToString(h.Sum(nil))
	var flat store.Layer
	if err := st.ReadRecord(records, key, &flat); err != nil || !st.Has(flat.Digest) {
		if flat, err = flatten(ctx, st, img, pw); err != nil {
			return store.Image{}, err
		}
		if err := st.WriteRecord(records, key, flat); err != nil {
			return store.Image{}, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return store.Image{}, err
	}
	cfg.RootFS.DiffIDs = []v1.Hash{flat.DiffID}
	cfg.History = []v1.History{{Created: v1.Time{Time: time.Unix(0, 0).UTC()}, CreatedBy: "docker bottle: the agent image and its bottle layer, flattened for smolvm"}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Image{}, err
	}
	if _, err := st.PutBytes(raw); err != nil {
		return store.Image{}, err
	}
	return store.Image{Config: raw, Layers: []store.Layer{flat}}, nil
}

func flatten(ctx context.Context, st *store.Store, img store.Image, pw display.Writer) (store.Layer, error) {
	const id = "squash"
	pw.Event(display.Event{Stage: display.StageLayer, ID: id, Status: display.Working, Text: fmt.Sprintf("flattening %d layers into one", len(img.Layers))})
	vimg, err := st.V1Image(img)
	if err != nil {
		return store.Layer{}, err
	}
	rc := mutate.Extract(vimg)
	defer rc.Close()
	w, err := st.NewWriter()
	if err != nil {
		return store.Layer{}, err
	}
	if _, err := io.Copy(w, store.ContextReader(ctx, rc)); err != nil {
		w.Abort()
		return store.Layer{}, fmt.Errorf("flattening the agent image: %w", err)
	}
	c, err := w.Commit(v1.Hash{})
	if err != nil {
		return store.Layer{}, err
	}
	pw.Event(display.Event{Stage: display.StageLayer, ID: id, Status: display.Done, Text: "flattened into one layer (" + display.Bytes(c.Size) + ")"})
	return store.Layer{MediaType: store.MediaTypeLayer, Digest: c.Digest, Size: c.Size, DiffID: c.Digest}, nil
}
