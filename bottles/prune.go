package bottles

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/artifact"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// PruneReport says what prune removed and how much it freed.
type PruneReport struct {
	Artifacts  []string `json:"artifacts"`
	Blobs      int      `json:"blobs"`
	Images     []string `json:"images"`
	BytesFreed int64    `json:"bytes_freed"`
}

// Freed is BytesFreed for people ("1.2 MB").
func (r PruneReport) Freed() string { return display.Bytes(r.BytesFreed) }

// imageRepos are the engine repositories the plugin makes images in.
var imageRepos = []string{image.LocalRepo, "docker-bottle/bundle", "docker-bottle/probe", "docker-bottle/build"}

// Prune removes what no bottle uses: cached artifacts (but those existing
// machines were made from), the blobs only they needed, and the plugin's
// images that no container uses.
func (s *Service) Prune(ctx context.Context) (PruneReport, error) {
	pipe, err := s.pipeline(ctx, nil)
	if err != nil {
		return PruneReport{}, err
	}
	ps, err := s.List()
	if err != nil {
		return PruneReport{}, err
	}
	inUse := map[string]bool{}
	for _, p := range ps {
		b, err := s.Backend(p)
		if err != nil {
			continue
		}
		for _, o := range b.Objects(p) {
			if o.Kind == backend.KindArtifact {
				inUse[o.Name] = true
			}
		}
	}
	keep := func(a artifact.Artifact) bool { return inUse[a.Path] }
	cr, err := pipe.Cache().Prune(pipe.Store(), artifact.PruneOptions{Keep: keep})
	if err != nil {
		return PruneReport{}, fmt.Errorf("pruning the artifact cache: %w", err)
	}
	rep := PruneReport{Artifacts: cr.Artifacts, Blobs: cr.Blobs, BytesFreed: cr.BytesFreed}
	lr, err := pruneSharedCache(s.dirs.Cache, keep)
	if err != nil {
		return rep, err
	}
	rep.Artifacts = append(rep.Artifacts, lr.Artifacts...)
	rep.Blobs += lr.Blobs
	rep.BytesFreed += lr.BytesFreed
	engine, ok := s.engine.(client.APIClient)
	if !ok {
		return rep, nil
	}
	imgs, err := engine.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return rep, fmt.Errorf("listing images: %w", err)
	}
	for _, img := range imgs.Items {
		for _, tag := range img.RepoTags {
			if !ours(tag) {
				continue
			}
			// Without force, the engine refuses an image a container uses.
			_, err := engine.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true})
			if cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("removing image %s: %w", tag, err)
			}
			rep.Images = append(rep.Images, tag)
			if len(img.RepoTags) == 1 {
				rep.BytesFreed += img.Size
			}
		}
	}
	return rep, nil
}

// pruneSharedCache prunes the cache that plugins before the per-engine
// cache (image.EngineCacheDir) kept for every engine at once, in
// cacheDir/images and cacheDir/artifacts: no engine's pipeline opens it
// any more, so only prune can free it. Artifacts existing machines were
// made from stay (keep); once none is left, the dirs go.
func pruneSharedCache(cacheDir string, keep func(artifact.Artifact) bool) (artifact.PruneReport, error) {
	images, artifacts := filepath.Join(cacheDir, "images"), filepath.Join(cacheDir, "artifacts")
	if !exists(images) && !exists(artifacts) {
		return artifact.PruneReport{}, nil
	}
	st, err := store.Open(images)
	if err != nil {
		return artifact.PruneReport{}, err
	}
	cache, err := artifact.Open(artifacts)
	if err != nil {
		return artifact.PruneReport{}, err
	}
	rep, err := cache.Prune(st, artifact.PruneOptions{Keep: keep})
	if err != nil {
		return rep, fmt.Errorf("pruning the cache shared by all engines in %s: %w", cacheDir, err)
	}
	if left, err := cache.List(); err != nil || len(left) > 0 {
		return rep, err
	}
	for _, dir := range []string{images, artifacts} {
		if err := os.RemoveAll(dir); err != nil {
			return rep, fmt.Errorf("removing the old shared cache: %w", err)
		}
	}
	return rep, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func ours(tag string) bool {
	for _, r := range imageRepos {
		if strings.HasPrefix(tag, r+":") {
			return true
		}
	}
	return false
}
