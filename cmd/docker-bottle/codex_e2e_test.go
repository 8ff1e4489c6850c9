//go:build e2e

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
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
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("cx-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-proj-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))

	ca, caFile := standInCA(t)
	certs := standInCert(t, ca, provider.OpenAIAPIHost, filepath.Join(t.TempDir(), "api"))
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
      websocket: true
`, provider.BuildArgBaseImage, base, caFile)
	run := startAgentRun(t, eng, cfg, repo, name, spec, []string{"OPENAI_API_KEY=" + realKey}, nil)
	var api testenv.Upstream
	run.whenBundleRuns(func(network string, labels map[string]string) {
		api = testenv.StartStandIn(t, eng, network, provider.OpenAIAPIHost, certs, labels, "openai", "--key-sha256", hex.EncodeToString(sum[:]))
	})
	if err := run.wait(10 * time.Minute); err != nil {
		t.Fatalf("run: %v%s", err, run.explain(api))
	}
	got, explain := run.out.String(), run.explain(api)
	if !strings.Contains(got, "codex-cli "+provider.CodexVersion) {
		t.Errorf("codex --version did not answer in the bottle:%s", explain)
	}
	if !strings.Contains(got, "OPENAI_API_KEY="+provider.OpenAIAPIKeyPlaceholder) {
		t.Errorf("the agent's key is not the placeholder:%s", explain)
	}
	// Over Codex's preferred transport, a WebSocket (the rule opts in: the
	// host has a secret): the proxy relays the upgrade and adds the key to
	// it.
	if !strings.Contains(got, "stand-in model heard over websocket: Say the bottle word.") || !strings.Contains(got, "codex exit: 0") {
		t.Errorf("codex exec did not finish a turn with the stand-in model over a WebSocket:%s", explain)
	}
	if strings.Contains(run.errb.String()+explain, realKey) {
		t.Error("the real key appears in the run's output or the audit")
	}
}
