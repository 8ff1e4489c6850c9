//go:build e2e

package build_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/flags"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
)

// dockerCli is a real docker CLI object, as the plugin gets it, on a
// temporary DOCKER_CONFIG whose cli-plugins dir holds docker-buildx.
func dockerCli(t *testing.T) (*command.DockerCli, string) {
	t.Helper()
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	// The docker CLI reads DOCKER_CONFIG once per process: the next test
	// of this package would get the first one's dir.
	config.SetDir(cfgDir)
	dir := filepath.Join(cfgDir, "cli-plugins")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildxBinary(t), filepath.Join(dir, "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions()); err != nil {
		t.Fatal(err)
	}
	if got := filepath.Dir(cli.ConfigFile().Filename); got != cfgDir {
		t.Fatalf("the docker CLI reads its config from %s, not DOCKER_CONFIG=%s", got, cfgDir)
	}
	return cli, cfgDir
}

// buildxBinary finds docker-buildx: $DOCKER_BOTTLE_BUILDX, PATH (where
// hack/tools.sh puts it), or the docker CLI plugin dirs.
func buildxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DOCKER_BOTTLE_BUILDX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("docker-buildx"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	for _, d := range []string{filepath.Join(home, ".docker", "cli-plugins"), "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"} {
		if p := filepath.Join(d, "docker-buildx"); isExec(p) {
			return p
		}
	}
	t.Fatal("this test needs the buildx CLI plugin (docker-buildx), found neither in $DOCKER_BOTTLE_BUILDX, on PATH nor in the docker CLI plugin dirs; install it with `bash hack/tools.sh`")
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

// multiStage is a FROM scratch Dockerfile with two stages; the first
// (selected with --target) copies the file named by a build argument.
const multiStage = `FROM scratch AS agent
ARG PICK=none
COPY $PICK /picked
COPY hello /bin/hello
LABEL picked=$PICK

FROM scratch AS other
COPY b.txt /b.txt
`

func testContext(t *testing.T) string {
	bin := t.TempDir()
	hello, err := os.ReadFile(testenv.StaticBinary(t, bin, "hello", "hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Context(t, multiStage, map[string][]byte{"a.txt": []byte("a\n"), "b.txt": []byte("b\n"), "hello": hello, "secret.key": []byte("k")})
}

// checkBuilt checks what both builders must produce from multiStage with
// PICK=a.txt and --target agent.
func checkBuilt(t *testing.T, ctx context.Context, res build.Result, eng interface {
	build.Inspector
}) {
	t.Helper()
	insp, err := eng.ImageInspect(ctx, res.Tag)
	if err != nil {
		t.Fatal(err)
	}
	if insp.ID != res.ImageID {
		t.Errorf("result ID %s, engine has %s for %s", res.ImageID, insp.ID, res.Tag)
	}
	if insp.Config.Labels["picked"] != "a.txt" || insp.Config.Labels[testenv.Label] != "1" {
		t.Errorf("labels %v: build arg or label lost", insp.Config.Labels)
	}
	if n := len(insp.RootFS.Layers); n != 2 {
		t.Errorf("%d layers: --target agent should give 2", n)
	}
}

func TestBuildx(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	cli, cfgDir := dockerCli(t)
	b, err := build.New(cli, eng, "plain")
	if err != nil {
		t.Fatal(err)
	}
	bx, ok := b.(build.Buildx)
	if !ok {
		t.Fatalf("build.New chose %T with buildx installed", b)
	}
	if bx.Path != filepath.Join(cfgDir, "cli-plugins", "docker-buildx") {
		t.Errorf("buildx path %s", bx.Path)
	}
	var lines []string
	pw := display.WriterFunc(func(e display.Event) {
		if e.Status == display.Log {
			lines = append(lines, e.Text)
		}
	})
	tag := testenv.Tag(t, eng, "buildx")
	res, err := b.Build(ctx, build.Options{
		ContextDir: testContext(t), Tag: tag, Target: "agent", NoCache: true,
		BuildArgs: map[string]string{"PICK": "a.txt"}, Labels: map[string]string{testenv.Label: "1"},
	}, pw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Builder != "buildx" {
		t.Errorf("built by %s", res.Builder)
	}
	checkBuilt(t, ctx, res, eng)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "COPY hello /bin/hello") }) {
		t.Errorf("buildx's progress lines did not come through as events: %q", lines)
	}

	// Inline Dockerfile (an agent provider's built-in one) on stdin.
	tag2 := testenv.Tag(t, eng, "buildx-inline")
	res2, err := b.Build(ctx, build.Options{ContextDir: testContext(t), Tag: tag2, DockerfileContent: []byte("FROM scratch\nCOPY b.txt /b\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if insp, err := eng.ImageInspect(ctx, tag2); err != nil || insp.ID != res2.ImageID {
		t.Errorf("inline build: %v", err)
	}

	// A failing build says why, from buildx's ERROR line.
	_, err = b.Build(ctx, build.Options{ContextDir: testContext(t), Tag: testenv.Tag(t, eng, "buildx-fail"), DockerfileContent: []byte("FROM scratch\nCOPY missing.txt /\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("failing buildx build: %v", err)
	}

	// DOCKER_BUILDKIT=0 selects the classic builder although buildx is there.
	t.Setenv("DOCKER_BUILDKIT", "0")
	b, err = build.New(cli, eng, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(build.Classic); !ok {
		t.Errorf("DOCKER_BUILDKIT=0 chose %T", b)
	}
}

func TestClassic(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	dir := testContext(t)
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("secret.key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	pw := display.WriterFunc(func(e display.Event) {
		if e.Status == display.Log {
			lines = append(lines, e.Text)
		}
	})
	b := build.Classic{Engine: eng}
	tag := testenv.Tag(t, eng, "classic")
	res, err := b.Build(ctx, build.Options{
		ContextDir: dir, Tag: tag, Target: "agent", NoCache: true,
		BuildArgs: map[string]string{"PICK": "a.txt"}, Labels: map[string]string{testenv.Label: "1"},
	}, pw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Builder != "classic" {
		t.Errorf("built by %s", res.Builder)
	}
	checkBuilt(t, ctx, res, eng)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "COPY hello /bin/hello") }) {
		t.Errorf("the engine's build output did not come through as events: %q", lines)
	}

	// .dockerignore is honoured: the ignored file is not in the context.
	_, err = b.Build(ctx, build.Options{ContextDir: dir, Tag: testenv.Tag(t, eng, "classic-ignored"), DockerfileContent: []byte("FROM scratch\nCOPY secret.key /\n")}, nil)
	if err == nil {
		t.Errorf("a file excluded by .dockerignore reached the build")
	}
	// A Dockerfile outside the context.
	outside := filepath.Join(t.TempDir(), "Agent.dockerfile")
	if err := os.WriteFile(outside, []byte("FROM scratch\nCOPY a.txt /a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag3 := testenv.Tag(t, eng, "classic-outside")
	res3, err := b.Build(ctx, build.Options{ContextDir: dir, Dockerfile: outside, Tag: tag3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if insp, err := eng.ImageInspect(ctx, tag3); err != nil || insp.ID != res3.ImageID || len(insp.RootFS.Layers) != 1 {
		t.Errorf("Dockerfile outside the context: %v", err)
	}
	// Errors are the engine's message.
	_, err = b.Build(ctx, build.Options{ContextDir: dir, Tag: testenv.Tag(t, eng, "classic-fail"), DockerfileContent: []byte("FROM scratch\nRUN true\n")}, nil)
	if err == nil {
		t.Errorf("RUN in a scratch image succeeded")
	}
	if _, err := b.Build(ctx, build.Options{ContextDir: filepath.Join(dir, "nope"), Tag: "x"}, nil); err == nil {
		t.Errorf("missing context accepted")
	}
	if _, err := b.Build(ctx, build.Options{ContextDir: dir, Tag: "x", BuildArgs: map[string]string{"A=B": "c"}}, nil); err == nil {
		t.Errorf("bad build arg accepted")
	}
}
