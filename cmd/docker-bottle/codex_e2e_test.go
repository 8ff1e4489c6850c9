package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
)

// TestCodexInBottle is the second provider end to end: `docker bottle run`
// with the codex provider, its built-in image built on the local Debian
// base, and a real `codex exec` turn against a stand-in api.openai.com (a
// TLS server the test controls, allowed by a private rule) that answers
// only requests carrying the real key as a bearer token, over the
// WebSocket transport Codex prefers. OPENAI_API_KEY in the bottle is the
// placeholder; the proxy swaps in the key, on the upgrade request too.
func TestCodexInBottle(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("cx-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-proj-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))

	work := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(work, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certs := standInCert(t, ca, provider.OpenAIAPIHost, filepath.Join(work, "api"))
	spec := fmt.Sprintf(`agent:
  provider: codex
  build_args:
    %s: %s
  command:
    - sh
    - -c
    - |
      codex --version
      env | grep '^OPENAI_API_KEY='
      for i in $(seq 90); do
        curl -fsS --max-time 5 -o /dev/null https://api.openai.com/v1/models -H "Authorization: Bearer $OPENAI_API_KEY" && break
        sleep 1
      done
      codex exec --dangerously-bypass-approvals-and-sandbox -c check_for_update_on_startup=false 'Say the bottle word.' </dev/null
      echo "codex exit: $?"
egress:
  extra_ca: %s
  allow:
    - host: api.openai.com
      ports: [443]
      private: true
`, provider.BuildArgBaseImage, base, filepath.Join(work, "ca", pki.CertFile))
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(testenv.DockerCLI(t), "bottle", "run", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "DOCKER_BOTTLE_SMOLVM=",
		"OPENAI_API_KEY="+realKey)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker(t, cfg, nil, "bottle", "rm", "-f", name) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	network := "bottle-" + name
	var api testenv.Upstream
	for deadline := time.Now().Add(5 * time.Minute); api.Name == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if res, err := eng.ContainerInspect(context.Background(), network+"-bundle", client.ContainerInspectOptions{}); err == nil &&
			res.Container.State != nil && res.Container.State.Running {
			api = testenv.StartStandIn(t, eng, network, provider.OpenAIAPIHost, certs,
				map[string]string{plan.LabelBottle: name, testenv.TestLabel: "1"}, "openai", "--key-sha256", hex.EncodeToString(sum[:]))
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before its bundle was up: %v\n%s\n%s", err, out.String(), errb.String())
		default:
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
		}
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("run did not finish\n%s\n%s", out.String(), errb.String())
	}
	got := out.String()
	audit := docker(t, cfg, nil, "bottle", "audit", name)
	explain := fmt.Sprintf("\nstdout:\n%s\nstderr:\n%s\nstand-in:\n%s\naudit:\n%s", got, errb.String(), containerLogs(t, eng, api), audit.stdout+audit.stderr)
	if !strings.Contains(got, "codex-cli "+provider.CodexVersion) {
		t.Errorf("codex --version did not answer in the bottle:%s", explain)
	}
	if !strings.Contains(got, "OPENAI_API_KEY="+provider.OpenAIAPIKeyPlaceholder) {
		t.Errorf("the agent's key is not the placeholder:%s", explain)
	}
	// Over Codex's preferred transport, a WebSocket: the proxy relays the
	// upgrade and adds the key to it.
	if !strings.Contains(got, "stand-in model heard over websocket: Say the bottle word.") || !strings.Contains(got, "codex exit: 0") {
		t.Errorf("codex exec did not finish a turn with the stand-in model over a WebSocket:%s", explain)
	}
	if strings.Contains(got+errb.String()+audit.stdout, realKey) {
		t.Error("the real key appears in the run's output or the audit")
	}
}
