package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
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

// TestClaudeInBottle is the user's main job on the docker backend, through
// the real CLI: `docker bottle run` in a repository with the claude
// provider, its built-in image built on a local Debian base (nothing can be
// pulled). Inside the bottle, `claude --version` works, ANTHROPIC_API_KEY
// holds only the placeholder, and a request to a stand-in api.anthropic.com
// (a TLS server the test controls, on the bundle's network, allowed by a
// private rule) arrives with the real key, which the stand-in checks by
// its hash. The real key appears nowhere in the bottle's output.
func TestClaudeInBottle(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	repo := testenv.GitRepo(t)
	name := fmt.Sprintf("cl-%d", time.Now().UnixNano()%1e6)
	realKey := "sk-ant-api03-" + randomHexT(t, 24)
	sum := sha256.Sum256([]byte(realKey))

	// The stand-in API host's certificate, from a CA the proxy is told to
	// trust (egress.extra_ca).
	work := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(work, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certDir := standInCert(t, ca, "api.anthropic.com", filepath.Join(work, "certs"))
	spec := fmt.Sprintf(`agent:
  build_args:
    %s: %s
  command:
    - sh
    - -c
    - |
      claude --version
      env | grep '^ANTHROPIC_API_KEY='
      for i in $(seq 90); do
        out=$(curl -sS --max-time 5 https://api.anthropic.com/secret -H "x-api-key: $ANTHROPIC_API_KEY") && break
        sleep 1
      done
      echo "upstream: $out"
egress:
  extra_ca: %s
  allow:
    - host: api.anthropic.com
      ports: [443]
      private: true
`, provider.BuildArgBaseImage, base, filepath.Join(work, "ca", pki.CertFile))
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(testenv.DockerCLI(t), "bottle", "run", "--backend", "docker", "--name", name, "--progress", "plain", repo)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "DOCKER_BOTTLE_SMOLVM=",
		"ANTHROPIC_API_KEY="+realKey, "CLAUDE_CODE_OAUTH_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker(t, cfg, nil, "bottle", "rm", "-f", name) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Put the stand-in on the bottle's network once the bundle runs (bring-
	// up may move the bottle to another subnet before that); labelled with
	// the bottle, its removal takes the stand-in too.
	network := "bottle-" + name
	attached := false
	for deadline := time.Now().Add(5 * time.Minute); !attached && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if res, err := eng.ContainerInspect(context.Background(), network+"-bundle", client.ContainerInspectOptions{}); err == nil &&
			res.Container.State != nil && res.Container.State.Running {
			testenv.StartUpstream(t, eng, network, "api.anthropic.com", certDir,
				map[string]string{plan.LabelBottle: name, testenv.TestLabel: "1"},
				"--secret-header", "x-api-key", "--secret-sha256", hex.EncodeToString(sum[:]))
			attached = true
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
	if !strings.Contains(got, provider.ClaudeCodeVersion+" (Claude Code)") {
		t.Errorf("claude --version did not answer in the bottle:\n%s", got)
	}
	if !strings.Contains(got, "ANTHROPIC_API_KEY=sk-ant-api03-") || strings.Contains(got, "ANTHROPIC_API_KEY="+realKey) {
		t.Errorf("the agent's key is not the placeholder:\n%s", got)
	}
	if !strings.Contains(got, "upstream: secret arrived at api.anthropic.com") {
		t.Errorf("the real key did not reach the stand-in API host:\n%s\nstderr:\n%s", got, errb.String())
	}
	if strings.Contains(got+errb.String(), realKey) {
		t.Error("the real key appears in the run's output")
	}
}

// standInCert writes cert.pem and key.pem for host, from ca, into dir.
func standInCert(t *testing.T, ca *pki.CA, host, dir string) string {
	t.Helper()
	m, err := pki.NewMinter(ca, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := m.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomHexT(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
