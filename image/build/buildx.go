package build

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker/cli/cli-plugins/manager"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/context/docker"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/display"
)

// Buildx builds by running the buildx CLI plugin standalone, as compose
// does: `docker-buildx build --load ...` against the same endpoint.
type Buildx struct {
	// Path is the docker-buildx binary.
	Path string
	// Env is its environment (see dockercli.StandaloneEnv).
	Env    []string
	Engine Inspector
	// Progress is buildx's --progress value: auto, tty, plain, quiet or
	// rawjson. Empty means plain.
	Progress string
	// Stderr receives buildx's progress output; nil turns each line into
	// a progress event. A terminal display sets it for `--progress tty`.
	Stderr io.Writer
}

// Build implements Builder.
func (b Buildx) Build(ctx context.Context, opts Options, pw display.Writer) (Result, error) {
	if pw == nil {
		pw = display.Discard
	}
	if err := opts.validate(); err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "docker-bottle-build-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	// buildx writes the metadata file itself (atomically), so it is only
	// named here, inside a private directory.
	metadataFile := filepath.Join(dir, "metadata.json")
	args := b.args(opts, metadataFile)
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Env = b.Env
	if len(opts.DockerfileContent) > 0 {
		cmd.Stdin = strings.NewReader(string(opts.DockerfileContent))
	}
	lines := display.Lines(pw, display.StageBuild, opts.Tag)
	defer lines.Close()
	tail := &tailWriter{max: 20}
	stderr := b.Stderr
	if stderr == nil {
		stderr = lines
	}
	cmd.Stderr = io.MultiWriter(stderr, tail)
	cmd.Stdout = lines
	pw.Event(display.Event{Stage: display.StageBuild, ID: opts.Tag, Status: display.Working, Text: "building with buildx"})
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		msg := tail.lastError()
		if msg == "" {
			msg = err.Error()
		}
		return Result{}, fmt.Errorf("build %s with buildx: %s", opts.Tag, msg)
	}
	if _, err := os.Stat(metadataFile); err != nil {
		return Result{}, fmt.Errorf("build %s with buildx: no build metadata written: %w", opts.Tag, err)
	}
	// The loaded image's ID is read back from the engine: the metadata's
	// digests depend on the image store and on attestations.
	id, err := imageID(ctx, b.Engine, opts.Tag)
	if err != nil {
		return Result{}, err
	}
	pw.Event(display.Event{Stage: display.StageBuild, ID: opts.Tag, Status: display.Done, Text: "built " + id})
	return Result{ImageID: id, Tag: opts.Tag, Builder: "buildx"}, nil
}

func (b Buildx) args(opts Options, metadataFile string) []string {
	mode := b.Progress
	if mode == "" {
		mode = "plain"
	}
	args := []string{"build", "--load", "--tag", opts.Tag, "--metadata-file", metadataFile, "--progress", mode}
	if len(opts.DockerfileContent) > 0 {
		args = append(args, "--file", "-")
	} else {
		args = append(args, "--file", opts.dockerfilePath())
	}
	for _, k := range slices.Sorted(maps.Keys(opts.BuildArgs)) {
		args = append(args, "--build-arg", k+"="+opts.BuildArgs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(opts.Labels)) {
		args = append(args, "--label", k+"="+opts.Labels[k])
	}
	if opts.Target != "" {
		args = append(args, "--target", opts.Target)
	}
	if opts.NoCache {
		args = append(args, "--no-cache")
	}
	return append(args, opts.ContextDir)
}

// tailWriter keeps buildx's last lines, to surface its ERROR line.
type tailWriter struct {
	max   int
	lines []string
	part  string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, l)
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

func (t *tailWriter) lastError() string {
	all := append(slices.Clone(t.lines), t.part)
	for i := len(all) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(all[i]); strings.HasPrefix(l, "ERROR:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "ERROR:"))
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(all[i]); l != "" {
			return l
		}
	}
	return ""
}

// BuildxProgress maps the plugin's --progress value to buildx's: buildx
// renders its own progress ("tty" only when the caller hands it the
// terminal as Stderr), json becomes buildx's rawjson lines.
func BuildxProgress(mode string, terminal bool) string {
	switch mode {
	case "json":
		return "rawjson"
	case "quiet", "plain":
		return mode
	case "tty":
		if terminal {
			return "tty"
		}
	case "", "auto":
		if terminal {
			return "auto"
		}
	}
	return "plain"
}

// CLI is what choosing a builder needs of the docker CLI (command.Cli
// satisfies it).
type CLI interface {
	ConfigFile() *configfile.ConfigFile
	CurrentContext() string
	DockerEndpoint() docker.Endpoint
	BuildKitEnabled() (bool, error)
}

// New picks the builder: buildx when BuildKit is not disabled
// (DOCKER_BUILDKIT=0) and the buildx plugin is installed, otherwise the
// classic builder. buildx runs standalone on the CLI's context, which it
// reads itself: no TLS material is written for it.
func New(cli CLI, eng ClassicEngine, buildxProgress string) (Builder, error) {
	enabled, err := cli.BuildKitEnabled()
	if err != nil {
		return nil, err
	}
	if !enabled {
		return Classic{Engine: eng}, nil
	}
	path, err := FindBuildx(cli)
	if err != nil {
		return Classic{Engine: eng}, nil
	}
	env, err := dockercli.StandaloneEnv(cli)
	if err != nil {
		return nil, err
	}
	return Buildx{Path: path, Env: env, Engine: eng, Progress: buildxProgress}, nil
}

// FindBuildx returns the path of the buildx plugin where the docker CLI
// would find it.
func FindBuildx(cli CLI) (string, error) {
	p, err := manager.GetPlugin("buildx", cli, &cobra.Command{})
	if err != nil {
		return "", err
	}
	if p.Err != nil {
		return "", fmt.Errorf("buildx plugin at %s is not usable: %w", p.Path, p.Err)
	}
	return p.Path, nil
}
