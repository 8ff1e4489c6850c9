//go:build e2e

package probeimage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/probe"
	"github.com/docker-bottle/docker-bottle/probe/internal/probetest"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// TestProbeImageRuns runs the probe image on the real engine, hardened as
// the docker backend runs an agent (non-root, no capabilities, read-only
// root) and with no network: the static binary runs without a shell, and
// the report comes out on stdout even when nothing is reachable. A secret
// put in its environment is found there and in /proc/self/environ.
func TestProbeImageRuns(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := os.ReadFile(probetest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	_, img, err := fromBinary(bin, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	tag := "docker-bottle-test/probe:" + hex.EncodeToString(b)
	if err := staticimage.Load(ctx, eng, tag, img); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})

	secret := "sk-in-container-" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(secret))
	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  tag,
			User:   "65534:65534",
			Env:    []string{"BOTTLE_NAME=probe-image-test", "LEAKED=" + secret},
			Cmd:    []string{"--secret-sha256", hex.EncodeToString(sum[:]), "--secret-len", "32", "--resolver", "127.0.0.1:53", "--lookup-domain", "probe.test", "--direct", "127.0.0.1:9", "--timeout", "2s", "--dial-timeout", "1s"},
			Labels: map[string]string{"dev.dockerbottle.test": "1"},
		},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none", CapDrop: []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	if len(secret) != 32 {
		t.Fatalf("the test secret is %d bytes", len(secret))
	}
	if _, err := eng.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := eng.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var stdout, stderr bytes.Buffer
	logs := func() {
		rd, err := eng.ContainerLogs(context.Background(), c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err == nil {
			stdcopy.StdCopy(&stdout, &stderr, rd)
			rd.Close()
		}
	}
	select {
	case res := <-wait.Result:
		logs()
		if res.StatusCode != 0 {
			t.Fatalf("the probe exited %d; stderr:\n%s", res.StatusCode, stderr.String())
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
	t.Logf("container report:\n%s", stdout.String())
	r, err := probe.Decode(stdout.Bytes())
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if r.Bottle != "probe-image-test" {
		t.Errorf("bottle %q", r.Bottle)
	}
	var sec probe.Check
	for _, c := range r.Checks {
		if c.Kind == probe.KindSecrets {
			sec = c
		}
	}
	if sec.Outcome != probe.OutcomeFound || !slices.Contains(sec.Evidence.Found, "env LEAKED") || !slices.Contains(sec.Evidence.Found, "/proc/self/environ") {
		t.Errorf("secrets in the container: %+v", sec)
	}
	if strings.Contains(stdout.String(), secret) {
		t.Error("the report holds the secret")
	}
	for _, c := range r.Checks {
		switch c.Kind {
		case probe.KindDirect, probe.KindLookup:
			if c.Outcome != probe.OutcomeFailed {
				t.Errorf("with no network: %+v", c)
			}
		case probe.KindGitClone, probe.KindEvent:
			if c.Outcome != probe.OutcomeError || !strings.Contains(c.Result, "is empty") {
				t.Errorf("without a bottle's environment: %+v", c)
			}
		}
	}
	// Nothing was reachable: the judge must fail the card.
	if card := probe.Judge(r, probe.Expect{Backend: "docker", NetworkMode: "internal"}); !card.Failed() || card.Verdict(1) != probe.Fail {
		t.Errorf("a probe that reached nothing was not failed: %+v", card)
	}
}
