// Package staticimage assembles small images from static binaries with
// go-containerregistry and loads them into the engine: no Dockerfile, no
// base image, no pull. The bundle and the probe agent are made this way
// (Binary), so they work offline and on every engine.
package staticimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"
)

// File is one file of the image.
type File struct {
	Path string // absolute path in the image
	Mode int64
	Data []byte
}

// Config is the image's run configuration.
type Config struct {
	Arch       string // amd64 or arm64
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	WorkingDir string
	Labels     map[string]string
}

// epoch is the fixed time of every entry, so equal inputs give equal
// digests.
var epoch = time.Unix(0, 0).UTC()

// Build makes a one-layer linux image holding files (and their parent
// directories). The layer is stored uncompressed: it only travels to the
// local engine, and compressing would cost time for nothing.
func Build(files []File, c Config) (v1.Image, error) {
	if c.Arch == "" {
		return nil, fmt.Errorf("staticimage: no architecture given")
	}
	layerTar, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(layerTar, types.DockerUncompressedLayer))
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", c.Arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = c.Entrypoint
	cf.Config.Cmd = c.Cmd
	cf.Config.User = c.User
	cf.Config.Env = c.Env
	cf.Config.WorkingDir = c.WorkingDir
	cf.Config.Labels = c.Labels
	return mutate.ConfigFile(img, cf)
}

func tarFiles(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("staticimage: %q is not a clean absolute path", f.Path)
		}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	fs := append([]File(nil), files...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range sorted {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/",
			Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range fs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"),
			Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Engine is what Load needs of the engine (a moby client satisfies it).
type Engine interface {
	daemon.Client
}

// Load puts img into the engine under tag, unless the engine already has
// that tag pointing at the same image.
func Load(ctx context.Context, e Engine, tag string, img v1.Image) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	if res, err := e.ImageInspect(ctx, tag); err == nil && res.ID == id.String() {
		return nil
	}
	if _, err := daemon.Write(t, img, daemon.WithClient(e), daemon.WithContext(ctx)); err != nil {
		return fmt.Errorf("loading image %s into the engine: %w", tag, err)
	}
	return nil
}

// Binary is an image of one static binary the plugin carries, run as its
// entrypoint: the bundle and the probe agent are such images.
type Binary struct {
	// Repo is the image's repository; the tag comes from the binary.
	Repo string
	// Read gives the binary for a linux architecture.
	Read func(arch string) ([]byte, error)
	// Path is where the binary sits in the image.
	Path       string
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
}

// Image assembles the image for a linux architecture. The tag is derived
// from the binary's digest, so a plugin upgrade makes a new image and an
// unchanged one reuses it.
func (b Binary) Image(arch string) (tag string, img v1.Image, err error) {
	bin, err := b.Read(arch)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(bin)
	tag = b.Repo + ":" + hex.EncodeToString(sum[:])[:16] + "-" + arch
	img, err = Build([]File{{Path: b.Path, Mode: 0o755, Data: bin}},
		Config{Arch: arch, Entrypoint: b.Entrypoint, Cmd: b.Cmd, Labels: b.Labels})
	if err != nil {
		return "", nil, fmt.Errorf("assembling %s: %w", b.Repo, err)
	}
	return tag, img, nil
}

// VersionEngine is what Ensure asks of the engine (a moby client
// satisfies it).
type VersionEngine interface {
	Engine
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
}

// Ensure makes sure the engine has the image for its own architecture and
// returns its tag; an existing image is reused.
func (b Binary) Ensure(ctx context.Context, e VersionEngine) (string, error) {
	v, err := e.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its architecture: %w", err)
	}
	tag, img, err := b.Image(v.Arch)
	if err != nil {
		return "", err
	}
	if err := Load(ctx, e, tag, img); err != nil {
		return "", err
	}
	return tag, nil
}
