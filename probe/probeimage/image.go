// Package probeimage assembles the probe agent's image from the probe
// binary the plugin carries (the probe is its `probe` subcommand, the
// stand-in hosts its `upstream`): one static file, no shell, no git, no
// base image, no pull.
package probeimage

import (
	"context"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// Repo is the repository of probe images in the engine.
const Repo = "docker-bottle/probe"

// BinaryPath is where the binary sits in the image.
const BinaryPath = "/bottle-probe"

// probeImage runs `bottle-probe probe`: the arguments (or a --config
// FILE) come as the container's command.
var probeImage = staticimage.Binary{Repo: Repo, Read: bundlebin.ProbeBinary, Path: BinaryPath,
	Entrypoint: []string{BinaryPath, "probe"}, Labels: map[string]string{plan.LabelRole: plan.RoleImage}}

// Ensure makes sure the engine has the probe image for its architecture and
// returns its tag; an existing image is reused.
func Ensure(ctx context.Context, e staticimage.VersionEngine) (string, error) {
	return probeImage.Ensure(ctx, e)
}
