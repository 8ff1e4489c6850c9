package bundlebin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// BinaryPath is where the bundle binary sits in the images made of it.
const BinaryPath = "/bottle-bundle"

// ProbeBinaryPath is where the probe binary sits in the images made of it.
const ProbeBinaryPath = "/bottle-probe"

// ImageSpec is an image made of one binary the plugin carries: the bundle
// (the bundle binary's `serve`) and the probe agent (the probe binary's
// `probe`) are such images.
type ImageSpec struct {
	// Repo is the image's repository; the tag comes from the binary.
	Repo string
	// Binary gives the binary for an architecture (nil: the bundle's);
	// Path is where it sits in the image (empty: BinaryPath).
	Binary     func(arch string) ([]byte, error)
	Path       string
	Entrypoint []string
	Cmd        []string
}

// Image assembles spec's image for a linux architecture from the binary
// the plugin carries. The tag is derived from the binary's digest, so a
// plugin upgrade makes a new image and an unchanged one reuses it.
func (spec ImageSpec) Image(arch string) (tag string, img v1.Image, err error) {
	binary := spec.Binary
	if binary == nil {
		binary = Binary
	}
	bin, err := binary(arch)
	if err != nil {
		return "", nil, err
	}
	return spec.FromBinary(bin, arch)
}

// FromBinary assembles spec's image from a given bundle binary.
func (spec ImageSpec) FromBinary(bin []byte, arch string) (string, v1.Image, error) {
	sum := sha256.Sum256(bin)
	tag := spec.Repo + ":" + hex.EncodeToString(sum[:])[:16] + "-" + arch
	path := spec.Path
	if path == "" {
		path = BinaryPath
	}
	img, err := staticimage.Build(
		[]staticimage.File{{Path: path, Mode: 0o755, Data: bin}},
		staticimage.Config{Arch: arch, Entrypoint: spec.Entrypoint, Cmd: spec.Cmd,
			Labels: map[string]string{plan.LabelRole: plan.RoleImage}})
	if err != nil {
		return "", nil, fmt.Errorf("assembling %s: %w", spec.Repo, err)
	}
	return tag, img, nil
}

// Engine is what Ensure asks of the engine (a moby client satisfies it).
type Engine interface {
	staticimage.Engine
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
}

// Ensure makes sure the engine has spec's image for its own architecture
// and returns its tag; an existing image is reused.
func (spec ImageSpec) Ensure(ctx context.Context, e Engine) (string, error) {
	v, err := e.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its architecture: %w", err)
	}
	tag, img, err := spec.Image(v.Arch)
	if err != nil {
		return "", err
	}
	if err := staticimage.Load(ctx, e, tag, img); err != nil {
		return "", err
	}
	return tag, nil
}
