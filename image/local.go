package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/export"
	"github.com/docker-bottle/docker-bottle/image/layer"
)

// LocalRepo is the repository of agent images with their bottle layer in
// the engine (for the docker backend).
const LocalRepo = "docker-bottle/agent"

// LocalResult is an agent image with its bottle layer, in the engine.
type LocalResult struct {
	// Tag names the image in the engine; it is derived from the agent
	// image and the bottle layer, so an unchanged pair reuses it.
	Tag string
	// ImageID is the agent image without the bottle layer.
	ImageID string
	Bundles []string
	Reused  bool
}

// Local makes the agent image with its bottle layer in the engine, for the
// docker backend: it builds (or finds) the agent image, computes the bottle
// layer like Run, then has the engine add that one layer on top (`FROM
// <agent image>` + `ADD layer.tar /` with the classic builder: the base
// layers stay where they are, nothing is pulled, and the image needs no
// shell). labels go on the result.
func (p *Pipeline) Local(ctx context.Context, req Request, labels map[string]string) (LocalResult, error) {
	if (req.Build == nil) == (req.Image == "") {
		return LocalResult{}, errors.New("image pipeline: give either a Dockerfile to build or an image, not both")
	}
	if err := req.Bottle.Validate(); err != nil {
		return LocalResult{}, err
	}
	unlock, err := p.store.Lock(false)
	if err != nil {
		return LocalResult{}, err
	}
	defer unlock()
	imageRef, err := p.agentImage(ctx, req)
	if err != nil {
		return LocalResult{}, err
	}
	insp, err := p.engine.ImageInspect(ctx, imageRef)
	if err != nil {
		return LocalResult{}, fmt.Errorf("agent image %s: %w", imageRef, err)
	}
	bl, ok := layer.Cached(p.store, insp.ID, req.Bottle)
	if !ok {
		exp, err := export.Image(ctx, p.engine, p.store, insp.ID, p.pw)
		if err != nil {
			return LocalResult{}, err
		}
		if _, bl, err = layer.Add(p.store, insp.ID, exp.Image, req.Bottle); err != nil {
			return LocalResult{}, err
		}
	}
	sum := sha256.Sum256([]byte(insp.ID + " " + bl.Layer.Digest.String()))
	res := LocalResult{Tag: LocalRepo + ":" + hex.EncodeToString(sum[:])[:16], ImageID: insp.ID, Bundles: bl.Bundles}
	if _, err := p.engine.ImageInspect(ctx, res.Tag); err == nil {
		res.Reused = true
		p.pw.Event(display.Event{Stage: display.StageLayer, ID: res.Tag, Status: display.Done, Text: "agent image with bottle layer: " + res.Tag})
		return res, nil
	}

	dir, err := os.MkdirTemp("", "docker-bottle-layer-")
	if err != nil {
		return LocalResult{}, err
	}
	defer os.RemoveAll(dir)
	// A hard link when the cache and the temp dir share a file system, a
	// copy otherwise; the layer is small either way.
	tarPath := filepath.Join(dir, "bottle-layer.tar")
	if err := os.Link(p.store.Path(bl.Layer.Digest), tarPath); err != nil {
		data, rerr := os.ReadFile(p.store.Path(bl.Layer.Digest))
		if rerr != nil {
			return LocalResult{}, fmt.Errorf("reading the bottle layer: %w", rerr)
		}
		if err := os.WriteFile(tarPath, data, 0o600); err != nil { //nolint:gosec // G703: a fixed name in our own temporary directory
			return LocalResult{}, err
		}
	}
	classic := build.Classic{Engine: p.engine}
	if _, err := classic.Build(ctx, build.Options{
		ContextDir:        dir,
		DockerfileContent: []byte("FROM " + insp.ID + "\nADD bottle-layer.tar /\n"),
		Tag:               res.Tag,
		Labels:            labels,
	}, p.pw); err != nil {
		return LocalResult{}, fmt.Errorf("adding the bottle layer in the engine: %w", err)
	}
	return res, nil
}
