package bottles

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/moby/moby/api/types/system"
	mobyclient "github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/stage"
)

// testEngineID is the ID testCLI's engine reports.
const testEngineID = "TEST:ENGINE:ID"

// infoEngine answers docker info with testEngineID, and nothing else.
type infoEngine struct{ *mobyclient.Client }

func (infoEngine) Info(context.Context, mobyclient.InfoOptions) (mobyclient.SystemInfoResult, error) {
	return mobyclient.SystemInfoResult{Info: system.Info{ID: testEngineID}}, nil
}

// testCLI is a docker CLI whose stderr is errOut, with an engine client
// that answers only docker info (the engine's ID keys its image cache).
func testCLI(t *testing.T, errOut *bytes.Buffer) command.Cli {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	eng, err := mobyclient.New(mobyclient.WithHost("unix://" + filepath.Join(t.TempDir(), "no.sock")))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := command.NewDockerCli(command.WithOutputStream(&bytes.Buffer{}), command.WithErrorStream(errOut))
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions(), command.WithAPIClient(infoEngine{eng})); err != nil {
		t.Fatal(err)
	}
	return cli
}

func testDirs(t *testing.T) stage.Dirs {
	d := t.TempDir()
	return stage.Dirs{State: filepath.Join(d, "state"), Cache: filepath.Join(d, "cache")}
}

// TestNewProgress: the service's step lines follow the progress mode it
// was made with: none by default or quiet, plain lines, or JSON events
// only, with the pipeline's display or without.
func TestNewProgress(t *testing.T) {
	for _, c := range []struct {
		mode     string
		pipeline bool
		check    func(t *testing.T, out string)
	}{
		{"", false, wantEmpty},
		{"quiet", true, wantEmpty},
		{"plain", false, wantPlain},
		{"plain", true, wantPlain},
		{"json", false, wantJSON},
		{"json", true, wantJSON},
	} {
		t.Run(c.mode+map[bool]string{true: " with pipeline"}[c.pipeline], func(t *testing.T) {
			var errOut bytes.Buffer
			var opts []Option
			if c.mode != "" {
				opts = append(opts, WithProgress(c.mode))
			}
			s, err := New(testCLI(t, &errOut), append(opts, WithDirs(testDirs(t)))...)
			if err != nil {
				t.Fatal(err)
			}
			if c.pipeline {
				if _, err := s.pipeline(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
			}
			s.step("bringing up %s", "the bundle")
			s.Close()
			c.check(t, errOut.String())
		})
	}
}

func wantEmpty(t *testing.T, out string) {
	if out != "" {
		t.Errorf("got %q, want nothing", out)
	}
}

func wantPlain(t *testing.T, out string) {
	if !strings.Contains(out, "bringing up the bundle\n") {
		t.Errorf("got %q, want the step line", out)
	}
}

func wantJSON(t *testing.T, out string) {
	if !strings.Contains(out, "bringing up the bundle") {
		t.Errorf("got %q, want the step", out)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not JSON: %q", line)
		}
	}
}

// TestPipelineLazy: New makes no pipeline; the first operation that needs
// one makes it and the next ones share it; Close releases it; an
// operation's own pipeline wins; a service without a docker CLI says how
// to make one.
func TestPipelineLazy(t *testing.T) {
	s, err := New(testCLI(t, &bytes.Buffer{}), WithDirs(testDirs(t)))
	if err != nil {
		t.Fatal(err)
	}
	if s.pipe != nil || s.display != nil {
		t.Fatal("New made a pipeline or a display")
	}
	p1, err := s.pipeline(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := image.EngineCacheDir(s.dirs.Cache, testEngineID)
	if err != nil {
		t.Fatal(err)
	}
	if got := p1.Store().Root(); got != filepath.Join(want, "images") {
		t.Errorf("the pipeline caches images in %s, not in its engine's %s", got, want)
	}
	p2, err := s.pipeline(context.Background(), nil)
	if err != nil || p2 != p1 {
		t.Fatalf("second pipeline: %p, %v; want the first, %p", p2, err, p1)
	}
	s.Close()
	if s.pipe != nil || s.display != nil {
		t.Fatal("Close left the pipeline or the display")
	}
	if p, err := s.pipeline(context.Background(), p1); err != nil || p != p1 || s.pipe != nil {
		t.Fatalf("a given pipeline: got %p, %v (own %p); want %p and none made", p, err, s.pipe, p1)
	}
	bare := &Service{dirs: testDirs(t)}
	if _, err := bare.pipeline(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "bottles.New") {
		t.Fatalf("no docker CLI: got %v, want an error naming bottles.New", err)
	}
}

// TestNewWithoutADockerCLI: a service made without a docker CLI needs its
// engine given; the options replace what New would find itself.
func TestNewWithoutADockerCLI(t *testing.T) {
	if _, err := New(nil, WithDirs(testDirs(t))); err == nil || !strings.Contains(err.Error(), "WithEngine") {
		t.Fatalf("no engine: got %v, want an error naming WithEngine", err)
	}
	eng, err := mobyclient.New(mobyclient.WithHost("unix://" + filepath.Join(t.TempDir(), "no.sock")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, WithEngine(eng), WithDirs(testDirs(t)), WithProgress("plain")); err == nil {
		t.Fatal("plain progress without a docker CLI to show it on")
	}
	var steps bytes.Buffer
	s, err := New(nil, WithEngine(eng), WithDirs(testDirs(t)), WithSmolvm(nil), WithSteps(&steps))
	if err != nil {
		t.Fatal(err)
	}
	if s.engine != eng || s.smolvm != nil || s.cli != nil {
		t.Errorf("engine %v, smolvm %v, cli %v", s.engine, s.smolvm, s.cli)
	}
	s.step("prepare: %s", "here")
	if steps.String() != "prepare: here\n" {
		t.Errorf("steps %q", steps.String())
	}
}
