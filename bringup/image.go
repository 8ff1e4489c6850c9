package bringup

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

// ImageRepo is the repository of bundle images in the engine.
const ImageRepo = "docker-bottle/bundle"

// BinaryPath is where the bundle binary sits in its image.
const BinaryPath = "/bottle-bundle"

// Image assembles the bundle image for a linux architecture from the
// binary the plugin carries. The tag is derived from the binary's digest,
// so a plugin upgrade makes a new image and an unchanged one reuses it.
func Image(arch string) (tag string, img v1.Image, err error) {
	bin, err := bundlebin.Binary(arch)
	if err != nil {
		return "", nil, err
	}
	return imageFromBinary(bin, arch)
}

func imageFromBinary(bin []byte, arch string) (string, v1.Image, error) {
	sum := sha256.Sum256(bin)
	tag := ImageRepo + ":" + hex.EncodeToString(sum[:])[:16] + "-" + arch
	img, err := staticimage.Build(
		[]staticimage.File{{Path: BinaryPath, Mode: 0o755, Data: bin}},
		staticimage.Config{
			Arch:       arch,
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"serve", "--config", StageMount + "/" + ConfigFile},
			Labels:     map[string]string{plan.LabelRole: plan.RoleImage},
		})
	return tag, img, err
}

// EnsureImage makes sure the engine has the bundle image for its own
// architecture and returns its tag. An existing image is reused.
func EnsureImage(ctx context.Context, e Engine) (string, error) {
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
