// Package artifact is the cache of `.smolmachine` artifacts, keyed by what
// went into them: the agent image's content, the bottle layer, the smolvm
// version and the platform. A hit skips export, push and pack entirely.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/image/store"
)

// Key is what an artifact is made from.
type Key struct {
	// Image is the agent image's content digest (the engine's image ID).
	Image string `json:"image"`
	// BottleLayer is the bottle layer's digest.
	BottleLayer string `json:"bottle_layer"`
	// Smolvm is the smolvm version that packs it.
	Smolvm string `json:"smolvm"`
	// Platform is the guest os/arch.
	Platform string `json:"platform"`
	// Layout says how the image was handed to smolvm; artifacts packed
	// from another layout are not reused.
	Layout string `json:"layout,omitempty"`
}

// LayoutSquashed is the layout of an agent image and its bottle layer
// flattened into one layer before the pack (package squash).
const LayoutSquashed = "squashed"

// ID is the key's hash: the artifact's directory name.
func (k Key) ID() string {
	b, _ := json.Marshal(k) // fixed field order: canonical
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (k Key) validate() error {
	if k.Image == "" || k.BottleLayer == "" || k.Smolvm == "" || k.Platform == "" {
		return fmt.Errorf("artifact key is incomplete: %+v", k)
	}
	return nil
}

// Artifact is a cached pack result.
type Artifact struct {
	ID  string `json:"id"`
	Key Key    `json:"key"`
	// Path is the .smolmachine file `smolvm machine create --from` takes.
	Path string `json:"-"`
	// Size is the artifact's size on disk.
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	// Blobs are the registry blobs it was packed from (config, layers):
	// prune keeps those of the artifacts it keeps.
	Blobs []v1.Hash `json:"blobs"`
	// Image is the reference smolvm pulled.
	Image string `json:"image"`
}

const (
	metaFile = "artifact.json"
	// stubName is the pack output; smolvm writes stubName.smolmachine.
	stubName = "agent"
)

// Cache is the artifact directory.
type Cache struct {
	dir string
}

// Open opens (creating it, 0700) the artifact cache in dir.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifact cache: %w; check that the cache dir is writable", err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) sidecar(id string) string {
	return filepath.Join(c.dir, id, stubName+".smolmachine")
}

// Lookup returns the artifact for key, if cached, and marks it used.
func (c *Cache) Lookup(key Key) (Artifact, bool, error) {
	if err := key.validate(); err != nil {
		return Artifact{}, false, err
	}
	a, err := c.load(key.ID())
	if errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, false, nil
	}
	if err != nil {
		return Artifact{}, false, err
	}
	if a.Key != key {
		return Artifact{}, false, fmt.Errorf("artifact %s does not match its key; remove it with docker bottle prune", a.ID)
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(c.dir, a.ID, metaFile), now, now)
	return a, true, nil
}

func (c *Cache) load(id string) (Artifact, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, id, metaFile))
	if err != nil {
		return Artifact{}, err
	}
	var a Artifact
	if err := json.Unmarshal(b, &a); err != nil {
		return Artifact{}, fmt.Errorf("artifact %s: damaged metadata: %w", id, err)
	}
	a.Path = c.sidecar(id)
	fi, err := os.Stat(a.Path)
	if err != nil {
		return Artifact{}, err
	}
	if a.Size == 0 {
		a.Size = fi.Size()
	}
	return a, nil
}

// LastUsed is when the artifact was last created or looked up.
func (c *Cache) LastUsed(a Artifact) time.Time {
	fi, err := os.Stat(filepath.Join(c.dir, a.ID, metaFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Create makes the artifact for key: pack is called with the stub path to
// write (in a scratch directory); the artifact appears in the cache only
// when pack succeeded and wrote its .smolmachine file. The stub itself is
// not kept: `machine create --from` reads only the .smolmachine file.
func (c *Cache) Create(key Key, image string, blobs []v1.Hash, pack func(output string) error) (Artifact, error) {
	if err := key.validate(); err != nil {
		return Artifact{}, err
	}
	id := key.ID()
	tmp, err := os.MkdirTemp(c.dir, ".tmp-"+id[:12]+"-")
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, stubName)
	if err := pack(out); err != nil {
		return Artifact{}, err
	}
	fi, err := os.Stat(out + ".smolmachine")
	if err != nil {
		return Artifact{}, fmt.Errorf("smolvm pack create reported success but wrote no %s.smolmachine: %w", stubName, err)
	}
	_ = os.Remove(out)
	a := Artifact{ID: id, Key: key, Size: fi.Size(), Created: time.Now().UTC(), Blobs: blobs, Image: image}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return Artifact{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), b, 0o600); err != nil {
		return Artifact{}, err
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, id)); err != nil {
		// A concurrent run packed the same key first: use its result.
		if existing, lerr := c.load(id); lerr == nil {
			return existing, nil
		}
		return Artifact{}, fmt.Errorf("artifact cache: %w", err)
	}
	a.Path = c.sidecar(id)
	return a, nil
}

// List returns every cached artifact, newest first.
func (c *Cache) List() ([]Artifact, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	var out []Artifact
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		a, err := c.load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Remove deletes one artifact and returns the bytes freed.
func (c *Cache) Remove(id string) (int64, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return 0, fmt.Errorf("bad artifact ID %q", id)
	}
	dir := filepath.Join(c.dir, id)
	size := dirSize(dir)
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	return size, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// PruneOptions says which artifacts prune keeps.
type PruneOptions struct {
	// Keep reports artifacts still in use (a bottle about to be created
	// from them); they are never removed.
	Keep func(Artifact) bool
	// UnusedFor removes only artifacts not used for this long; zero
	// removes every artifact not kept.
	UnusedFor time.Duration
}

// PruneReport says what prune removed.
type PruneReport struct {
	Artifacts  []string `json:"artifacts"`
	Blobs      int      `json:"blobs"`
	BytesFreed int64    `json:"bytes_freed"`
}

// Prune removes unused artifacts, then every blob of st that no remaining
// artifact was packed from, the cache records pointing at removed blobs, and
// scratch files of interrupted runs. It takes the store's exclusive lock.
func (c *Cache) Prune(st *store.Store, opts PruneOptions) (PruneReport, error) {
	unlock, err := st.Lock(true)
	if err != nil {
		return PruneReport{}, err
	}
	defer unlock()
	var rep PruneReport
	arts, err := c.List()
	if err != nil {
		return rep, err
	}
	keepBlobs := map[v1.Hash]bool{}
	for _, a := range arts {
		keep := opts.Keep != nil && opts.Keep(a)
		if !keep && opts.UnusedFor > 0 && time.Since(c.LastUsed(a)) < opts.UnusedFor {
			keep = true
		}
		if keep {
			for _, h := range a.Blobs {
				keepBlobs[h] = true
			}
			continue
		}
		n, err := c.Remove(a.ID)
		if err != nil {
			return rep, fmt.Errorf("remove artifact %s: %w", a.ID, err)
		}
		rep.Artifacts = append(rep.Artifacts, a.ID)
		rep.BytesFreed += n
	}
	// Scratch of interrupted packs.
	if entries, err := os.ReadDir(c.dir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				p := filepath.Join(c.dir, e.Name())
				rep.BytesFreed += dirSize(p)
				_ = os.RemoveAll(p)
			}
		}
	}
	err = st.Walk(func(h v1.Hash, size int64) error {
		if keepBlobs[h] {
			return nil
		}
		if _, err := st.Delete(h); err != nil {
			return err
		}
		rep.Blobs++
		rep.BytesFreed += size
		return nil
	})
	if err != nil {
		return rep, err
	}
	freed, err := st.PruneRecords()
	rep.BytesFreed += freed
	if err != nil {
		return rep, err
	}
	n, err := st.RemoveScratch(0)
	rep.BytesFreed += n
	return rep, err
}
