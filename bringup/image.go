package bringup

import (
	"context"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// ImageRepo is the repository of bundle images in the engine.
const ImageRepo = "docker-bottle/bundle"

// BinaryPath is where the bundle binary sits in its image.
const BinaryPath = "/bottle-bundle"

// bundleImage runs the three daemons from the configuration in the stage
// dir.
var bundleImage = staticimage.Binary{
	Repo:       ImageRepo,
	Read:       bundlebin.Binary,
	Path:       BinaryPath,
	Entrypoint: []string{BinaryPath},
	Cmd:        []string{"serve", "--config", StageMount + "/" + ConfigFile},
	Labels:     map[string]string{plan.LabelRole: plan.RoleImage},
}

// EnsureImage makes sure the engine has the bundle image for its own
// architecture and returns its tag. An existing image is reused.
func EnsureImage(ctx context.Context, e Engine) (string, error) { return bundleImage.Ensure(ctx, e) }
