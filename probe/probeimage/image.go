// Package probeimage assembles the probe agent's image from the probe
// binary the plugin carries (the probe is its `probe` subcommand, the
// stand-in hosts its `upstream`): one static file, no shell, no git, no
// base image, no pull.
package probeimage

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
)

// Repo is the repository of probe images in the engine.
const Repo = "docker-bottle/probe"

// BinaryPath is where the binary sits in the image.
const BinaryPath = bundlebin.ProbeBinaryPath

// probeImage runs `bottle-probe probe`: the arguments (or a --config
// FILE) come as the container's command.
var probeImage = bundlebin.ImageSpec{Repo: Repo, Binary: bundlebin.ProbeBinary, Path: BinaryPath,
	Entrypoint: []string{BinaryPath, "probe"}}

// FromBinary assembles the probe image from a given probe binary.
func FromBinary(bin []byte, arch string) (string, v1.Image, error) {
	return probeImage.FromBinary(bin, arch)
}

// Engine is what Ensure needs of the engine (a moby client satisfies it).
type Engine = bundlebin.Engine

// Ensure makes sure the engine has the probe image for its architecture and
// returns its tag; an existing image is reused.
func Ensure(ctx context.Context, e Engine) (string, error) { return probeImage.Ensure(ctx, e) }
