// Package build builds the agent image with the engine of the current
// context: through the buildx plugin when it is installed (as compose does),
// otherwise through the engine's classic builder. Either way the result is
// an image in the engine, named by its image ID.
package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/display"
)

// Options describe one build.
type Options struct {
	// ContextDir is the build context directory.
	ContextDir string
	// Dockerfile is absolute or relative to ContextDir; empty means
	// ContextDir/Dockerfile. Ignored when DockerfileContent is set.
	Dockerfile string
	// DockerfileContent is a Dockerfile given inline (an agent provider's
	// built-in one).
	DockerfileContent []byte
	// Tag names the result in the engine.
	Tag       string
	BuildArgs map[string]string
	Target    string
	NoCache   bool
	Labels    map[string]string
}

// Result is a built image.
type Result struct {
	// ImageID is the engine's ID of the image, what the rest keys on.
	ImageID string
	Tag     string
	// Builder is "buildx" or "classic".
	Builder string
}

// Builder builds an image.
type Builder interface {
	Build(ctx context.Context, opts Options, pw display.Writer) (Result, error)
}

// Inspector is the engine call both builders use to read back the ID of
// the image they tagged.
type Inspector interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
}

func (o Options) validate() error {
	if o.Tag == "" {
		return errors.New("build: no tag for the image")
	}
	if o.ContextDir == "" {
		return errors.New("build: no build context directory")
	}
	fi, err := os.Stat(o.ContextDir)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("build context %s is not a directory", o.ContextDir)
	}
	if len(o.DockerfileContent) == 0 {
		if _, err := os.Stat(o.dockerfilePath()); err != nil {
			return fmt.Errorf("build: cannot read the Dockerfile: %w", err)
		}
	}
	for k := range o.BuildArgs {
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return fmt.Errorf("build: bad build argument name %q", k)
		}
	}
	return nil
}

// dockerfilePath is the absolute path of the Dockerfile on disk.
func (o Options) dockerfilePath() string {
	df := o.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(o.ContextDir, df)
	}
	return df
}

func imageID(ctx context.Context, eng Inspector, tag string) (string, error) {
	insp, err := eng.ImageInspect(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("build finished but the image %s cannot be inspected: %w", tag, err)
	}
	return insp.ID, nil
}
