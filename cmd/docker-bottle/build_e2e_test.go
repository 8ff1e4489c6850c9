//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/probe/probeimage"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

// TestBuildAndPrune: `docker bottle build` makes the agent image for each
// backend (for smolvm, packed through the contract fake into a cached
// artifact); a second build moves nothing; `prune` removes what no bottle
// uses and says how much it freed. Not parallel: prune would remove the
// images of bottles other tests are about to run (the parallel tests wait
// for every serial one to end before they start).
func TestBuildAndPrune(t *testing.T) {
	eng := testenv.Engine(t)
	tag, err := probeimage.Ensure(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := smolvmtest.BuildFake(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte("agent:\n  provider: shell\n  image: "+tag+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_BOTTLE_SMOLVM=" + fake, "SMOLVM_FAKE_STATE=" + t.TempDir()}
	build := func(backend string) bottles.Built {
		t.Helper()
		r := docker(t, cfg, env, "bottle", "build", "--backend", backend, "--format", "json", "--progress", "quiet", repo)
		var b bottles.Built
		if err := json.Unmarshal([]byte(r.stdout), &b); r.code != 0 || err != nil {
			t.Fatalf("build --backend %s: exit %d %v\n%s%s", backend, r.code, err, r.stdout, r.stderr)
		}
		return b
	}
	d1 := build("docker")
	if !strings.HasPrefix(d1.Tag, "docker-bottle/agent:") || d1.CacheHit {
		t.Errorf("docker build %+v", d1)
	}
	if d2 := build("docker"); d2.Tag != d1.Tag || !d2.CacheHit {
		t.Errorf("second docker build %+v", d2)
	}
	s1 := build("smolvm")
	if !strings.HasSuffix(s1.Artifact, ".smolmachine") || s1.CacheHit {
		t.Errorf("smolvm build %+v", s1)
	}
	if _, err := os.Stat(s1.Artifact); err != nil {
		t.Errorf("artifact: %v", err)
	}
	if s2 := build("smolvm"); s2.Artifact != s1.Artifact || !s2.CacheHit {
		t.Errorf("second smolvm build %+v", s2)
	}

	r := docker(t, cfg, env, "bottle", "prune", "-f", "--format", "json")
	var rep bottles.PruneReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil {
		t.Fatalf("prune: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(rep.Artifacts) != 1 || rep.Blobs == 0 || rep.BytesFreed == 0 {
		t.Errorf("prune report %+v", rep)
	}
	found := false
	for _, i := range rep.Images {
		found = found || i == d1.Tag
	}
	if !found {
		t.Errorf("prune did not remove %s: %v", d1.Tag, rep.Images)
	}
	if _, err := os.Stat(s1.Artifact); !os.IsNotExist(err) {
		t.Errorf("the artifact is still there: %v", err)
	}
	if _, err := eng.ImageInspect(context.Background(), d1.Tag); err == nil {
		t.Errorf("the agent image %s is still in the engine", d1.Tag)
	}
	// Answering no keeps everything.
	no := docker(t, cfg, env, "bottle", "prune")
	if no.code != 0 || strings.Contains(no.stdout, "Deleted") {
		t.Errorf("prune without confirmation: exit %d %q", no.code, no.stdout)
	}
}
