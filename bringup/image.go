package bringup

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
)

// ImageRepo is the repository of bundle images in the engine.
const ImageRepo = "docker-bottle/bundle"

// BinaryPath is where the bundle binary sits in its image.
const BinaryPath = bundlebin.BinaryPath

// bundleImage runs the three daemons from the configuration in the stage
// dir.
var bundleImage = bundlebin.ImageSpec{
	Repo:       ImageRepo,
	Entrypoint: []string{BinaryPath},
	Cmd:        []string{"serve", "--config", StageMount + "/" + ConfigFile},
}

// Image assembles the bundle image for a linux architecture from the
// binary the plugin carries.
func Image(arch string) (tag string, img v1.Image, err error) { return bundleImage.Image(arch) }

// EnsureImage makes sure the engine has the bundle image for its own
// architecture and returns its tag. An existing image is reused.
func EnsureImage(ctx context.Context, e Engine) (string, error) { return bundleImage.Ensure(ctx, e) }
