// Package probeimage assembles the probe agent's image from the bundle
// binary the plugin carries (the probe is its `probe` subcommand): one
// static file, no shell, no git, no base image, no pull.
package probeimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// Repo is the repository of probe images in the engine.
const Repo = "docker-bottle/probe"

// BinaryPath is where the binary sits in the image.
const BinaryPath = "/bottle-bundle"

// Image assembles the probe image for a linux architecture. The tag is
// derived from the binary's digest, like the bundle's.
func Image(arch string) (tag string, img v1.Image, err error) {
	bin, err := bundlebin.Binary(arch)
	if err != nil {
		return "", nil, err
	}
	return FromBinary(bin, arch)
}

// FromBinary assembles the probe image from a bundle binary. Its entrypoint
// is `bottle-bundle probe`: the arguments (or a --config FILE) come as the
// container's command.
func FromBinary(bin []byte, arch string) (string, v1.Image, error) {
	sum := sha256.Sum256(bin)
	tag := Repo + ":" + hex.EncodeToString(sum[:])[:16] + "-" + arch
	img, err := staticimage.Build(
		[]staticimage.File{{Path: BinaryPath, Mode: 0o755, Data: bin}},
		staticimage.Config{
			Arch:       arch,
			Entrypoint: []string{BinaryPath, "probe"},
			Labels:     map[string]string{plan.LabelRole: plan.RoleImage},
		})
	if err != nil {
		return "", nil, fmt.Errorf("assembling the probe image: %w", err)
	}
	return tag, img, nil
}

// Engine is what Ensure needs of the engine (a moby client satisfies it).
type Engine interface {
	staticimage.Engine
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
}

// Ensure makes sure the engine has the probe image for its architecture and
// returns its tag; an existing image is reused.
func Ensure(ctx context.Context, e Engine) (string, error) {
	v, err := e.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the engine for its architecture: %w", err)
	}
	tag, img, err := Image(v.Arch)
	if err != nil {
		return "", err
	}
	if err := staticimage.Load(ctx, e, tag, img); err != nil {
		return "", err
	}
	return tag, nil
}
