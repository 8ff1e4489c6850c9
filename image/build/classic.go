package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	dockerbuild "github.com/docker/cli/cli/command/image/build"
	"github.com/moby/go-archive"
	apibuild "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/display"
)

// ClassicEngine is what the classic builder needs of the engine API.
type ClassicEngine interface {
	Inspector
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
}

// Classic builds with the engine's classic builder (API `version=1`): no
// BuildKit features (RUN --mount, secrets, multi-platform), but present on
// every engine.
type Classic struct {
	Engine ClassicEngine
}

// Build implements Builder.
func (c Classic) Build(ctx context.Context, opts Options, pw display.Writer) (Result, error) {
	if pw == nil {
		pw = display.Discard
	}
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	buildCtx, relDockerfile, err := contextTar(opts)
	if err != nil {
		return Result{}, err
	}
	defer buildCtx.Close()

	args := map[string]*string{}
	for k, v := range opts.BuildArgs {
		args[k] = &v
	}
	pw.Event(display.Event{Stage: display.StageBuild, ID: opts.Tag, Status: display.Working, Text: "building with the classic builder"})
	resp, err := c.Engine.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Version:     apibuild.BuilderV1,
		Tags:        []string{opts.Tag},
		Dockerfile:  relDockerfile,
		BuildArgs:   args,
		Target:      opts.Target,
		NoCache:     opts.NoCache,
		Labels:      opts.Labels,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("build %s: %w", opts.Tag, err)
	}
	defer resp.Body.Close()
	id, err := readBuildStream(resp.Body, pw, opts.Tag)
	if err != nil {
		return Result{}, fmt.Errorf("build %s: %w", opts.Tag, err)
	}
	if id == "" {
		if id, err = imageID(ctx, c.Engine, opts.Tag); err != nil {
			return Result{}, err
		}
	}
	pw.Event(display.Event{Stage: display.StageBuild, ID: opts.Tag, Status: display.Done, Text: "built " + id})
	return Result{ImageID: id, Tag: opts.Tag, Builder: "classic"}, nil
}

// readBuildStream turns the engine's JSON messages into events and returns
// the image ID from the aux message the builder sends at the end.
func readBuildStream(r io.Reader, pw display.Writer, tag string) (string, error) {
	lines := display.Lines(pw, display.StageBuild, tag)
	defer lines.Close()
	dec := json.NewDecoder(r)
	var id string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return id, nil
		} else if err != nil {
			return "", fmt.Errorf("read the engine's build output: %w", err)
		}
		if m.Error != nil {
			return "", errors.New(strings.TrimSpace(m.Error.Message))
		}
		if m.Aux != nil {
			var res apibuild.Result
			if err := json.Unmarshal(*m.Aux, &res); err == nil && res.ID != "" {
				id = res.ID
			}
			continue
		}
		if m.Stream != "" {
			_, _ = io.WriteString(lines, m.Stream)
		} else if m.Status != "" {
			_, _ = io.WriteString(lines, m.Status+"\n")
		}
	}
}

// contextTar makes the build context archive as `docker build` does:
// .dockerignore honoured, files owned by root, and a Dockerfile from
// outside the context (or inline) added under a random name.
func contextTar(opts Options) (io.ReadCloser, string, error) {
	dockerfile := opts.dockerfilePath()
	var inline []byte
	if len(opts.DockerfileContent) > 0 {
		inline = opts.DockerfileContent
		dockerfile = "-"
	}
	contextDir, relDockerfile, err := dockerbuild.GetContextFromLocalDir(opts.ContextDir, dockerfile)
	if err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	outside := strings.HasPrefix(relDockerfile, ".."+string(filepath.Separator))
	if outside {
		if inline, err = os.ReadFile(dockerfile); err != nil {
			return nil, "", fmt.Errorf("build: %w", err)
		}
	}
	excludes, err := dockerbuild.ReadDockerignore(contextDir)
	if err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	if err := dockerbuild.ValidateContextDirectory(contextDir, excludes); err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	excludes = dockerbuild.TrimBuildFilesFromExcludes(excludes, relDockerfile, inline != nil)
	tarball, err := archive.TarWithOptions(contextDir, &archive.TarOptions{
		ExcludePatterns: excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	if inline != nil {
		return dockerbuild.AddDockerfileToBuildContext(io.NopCloser(strings.NewReader(string(inline))), tarball)
	}
	return tarball, relDockerfile, nil
}
