//go:build e2e

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestExecHasTheAgentsNetwork: a command run with `docker bottle exec`
// reaches what the agent reaches, through the real docker CLI, on the
// docker backend and on the smolvm contract fake (bridge mode: the fake's
// guest is a host process, which reaches the bundle's bridge address but
// not smolvm's loopback gateway). An allowed stand-in host answers 200 over
// http and over https (the proxy intercepts it, so the bottle CA variables
// count); an unlisted host gets the proxy's 403, not a 407 for a missing
// token; git reaches the gate; with and without -it, -e and -w. The token
// is in no `docker inspect`, smolvm record or command line, no command
// line in the bottle, and no log or audit.
func TestExecHasTheAgentsNetwork(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	ca, caFile := standInCA(t)
	const allowed = "allowed.example"
	certs := standInCert(t, ca, allowed, filepath.Join(t.TempDir(), "allowed"))
	dockerfile := agentDockerfile(base)
	spec := fmt.Sprintf(`agent:
  provider: shell
  dockerfile: Dockerfile
  command: [sleep, "900"]
egress:
  extra_ca: %s
  allow:
    - host: %s
      ports: [80, 443]
      private: true
      methods: [GET]
`, caFile, allowed)

	// Every smolvm command line is kept, to look for the token in it.
	wrapper, calls := recordedSmolvm(t)
	fakeState := t.TempDir()

	for _, tc := range []struct {
		backend string
		env     []string
		args    []string
	}{
		{"docker", []string{"DOCKER_BOTTLE_SMOLVM="}, []string{"--backend", "docker"}},
		{"smolvm", []string{"DOCKER_BOTTLE_SMOLVM=" + wrapper, "SMOLVM_FAKE_STATE=" + fakeState, "SMOLVM_FAKE_VERSION=1.9.3"},
			[]string{"--backend", "smolvm", "--network-mode", "bridge"}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			cfg := testenv.DockerConfig(t)
			repo := testenv.GitRepoWith(t, map[string]string{"Dockerfile": dockerfile, "bottle.yaml": spec})
			name := fmt.Sprintf("ex-%s-%d", tc.backend[:1], time.Now().UnixNano()%1e6)
			args := append(append([]string{"bottle", "run", "-d", "--name", name, "--progress", "plain"}, tc.args...), repo)
			run := docker(t, cfg, tc.env, args...)
			if run.code != 0 {
				t.Fatalf("run -d: exit %d\n%s", run.code, run.stderr)
			}
			removedAtEnd(t, cfg, tc.env, name, repo)
			svc := serviceOf(t, cfg)
			p, err := svc.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			token, err := os.ReadFile(p.AgentTokenFile)
			if err != nil || len(strings.TrimSpace(string(token))) < 16 {
				t.Fatalf("the bottle's token: %q %v", token, err)
			}
			tok := strings.TrimSpace(string(token))
			testenv.StartUpstream(t, eng, p.Bundle.Network, allowed, certs, map[string]string{plan.LabelBottle: name, testenv.TestLabel: "1"})

			seen := run.stdout + run.stderr
			exec := func(flags []string, script string) string {
				t.Helper()
				a := append(append([]string{"bottle", "exec"}, flags...), name, "--", "sh", "-c", script)
				r := docker(t, cfg, tc.env, a...)
				seen += r.stdout + r.stderr
				if r.code != 0 {
					t.Errorf("exec %v %q: exit %d\n%s%s", flags, script, r.code, r.stdout, r.stderr)
				}
				return strings.TrimSpace(r.stdout)
			}
			code := func(scheme, host string) string {
				return fmt.Sprintf(`curl -s -o /dev/null -w '%%{http_code}' %s://%s/`, scheme, host)
			}
			for _, c := range []struct{ script, want string }{
				{code("http", allowed), "200"},
				{code("https", allowed), "200"},
				{code("http", "unlisted.example"), "403"},
				// curl fails (56) when the CONNECT is refused.
				{`curl -s -o /dev/null -w '%{http_connect}' https://unlisted.example/ || true`, "403"},
				{`git ls-remote --heads "$BOTTLE_GATE_URL" main | cut -f2`, "refs/heads/main"},
			} {
				if got := exec(nil, c.script); got != c.want {
					t.Errorf("exec %q: %q, want %q", c.script, got, c.want)
				}
			}
			// The user's -e and -w apply, next to the agent's network.
			withFlags := `printf '%s %s ' "$MARK" "$PWD"; ` + code("https", allowed)
			if got := exec([]string{"-e", "MARK=m1", "-w", "/tmp"}, withFlags); got != "m1 /tmp 200" {
				t.Errorf("exec -e -w: %q", got)
			}
			// On the user's terminal too.
			status, screen := onTerminal(t, cfg, tc.env, []string{"bottle", "exec", "-it", "-e", "MARK=m2", "-w", "/tmp", name, "--",
				"sh", "-c", "test -t 1 && " + withFlags + "; echo ' end'"}, " end", "")
			seen += screen
			if status != 0 || !strings.Contains(screen, "m2 /tmp 200 end") {
				t.Errorf("exec -it -e -w: exit %d\n%q", status, screen)
			}
			if got := exec(nil, `tr '\0' ' ' < /proc/self/cmdline >/dev/null; for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done`); strings.Contains(got, tok) {
				t.Errorf("a command line in the bottle holds the token:\n%s", got)
			}

			// Nothing outside the exec'd process holds the token.
			inspect := docker(t, cfg, nil, "inspect", p.Bundle.Container)
			seen += inspect.stdout
			if p.Docker != nil {
				agent := docker(t, cfg, nil, "inspect", p.Docker.Container)
				if agent.code != 0 || !strings.Contains(agent.stdout, "HTTPS_PROXY=") {
					t.Errorf("docker inspect of the agent: exit %d %s", agent.code, agent.stderr)
				}
				seen += agent.stdout
			}
			bundleLogs := docker(t, cfg, nil, "logs", p.Bundle.Container)
			logs := docker(t, cfg, tc.env, "bottle", "logs", name)
			audit := docker(t, cfg, tc.env, "bottle", "audit", name)
			seen += bundleLogs.stdout + bundleLogs.stderr + logs.stdout + logs.stderr + audit.stdout + audit.stderr
			if strings.Contains(audit.stdout, "missing or wrong proxy token") || !strings.Contains(audit.stdout, "unlisted.example") {
				t.Errorf("the audit shows requests without the token, or none of the exec's:\n%s", audit.stdout)
			}
			if p.Smolvm != nil {
				seen += smolvmRecords(t, fakeState, calls)
			}
			if strings.Contains(seen, tok) {
				t.Errorf("the token appears in an inspect, a record, a command line or a log")
			}
		})
	}
}

// smolvmRecords is what the fake smolvm keeps of its machines (their
// records, not their root file systems, where the bottle's guest dir is
// mounted) and every smolvm command line so far.
func smolvmRecords(t *testing.T, state, calls string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "rootfs" {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && !strings.HasSuffix(path, ".smolmachine") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	b.Write(data)
	if b.Len() == 0 {
		t.Fatal("the fake smolvm recorded nothing")
	}
	return b.String()
}
