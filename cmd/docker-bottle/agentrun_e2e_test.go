//go:build e2e

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
)

// agentRun is `docker bottle run --backend docker` of a real agent in a
// test, whose API hosts are stand-ins the test puts on the bottle's
// network once the bundle runs.
type agentRun struct {
	t         *testing.T
	eng       *client.Client
	cfg, name string
	cmd       *exec.Cmd
	out, errb testio.Buffer
	done      chan error
}

// standInCA makes a CA for the stand-ins' certificates; the bottle's spec
// names its certificate file (returned) in egress.extra_ca, so that the
// proxy trusts them.
func standInCA(t *testing.T) (*pki.CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ca, filepath.Join(dir, pki.CertFile)
}

// startAgentRun writes spec as the repository's bottle.yaml and starts
// `docker bottle run` with env added. With terminal set, the run has it
// as its controlling terminal and stdio (the test reads the other end);
// otherwise its output goes to r.out and r.errb. The bottle is removed
// when the test ends.
func startAgentRun(t *testing.T, eng *client.Client, cfg, repo, name, spec string, env []string, terminal *os.File) *agentRun {
	t.Helper()
	if err := os.WriteFile(filepath.Join(repo, "bottle.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bottle", "run", "--backend", "docker", "--name", name}
	if terminal == nil {
		args = append(args, "--progress", "plain")
	}
	r := &agentRun{t: t, eng: eng, cfg: cfg, name: name, done: make(chan error, 1)}
	r.cmd = exec.Command(testenv.DockerCLI(t), append(args, repo)...)
	r.cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"), "DOCKER_BOTTLE_SMOLVM="), env...)
	if terminal != nil {
		r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = terminal, terminal, terminal
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	} else {
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errb
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	removedAtEnd(t, cfg, nil, name, repo)
	go func() { r.done <- r.cmd.Wait() }()
	return r
}

// ended fails the test if the run has ended already.
func (r *agentRun) ended() {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.t.Fatalf("the run ended early: %v\nstdout:\n%s\nstderr:\n%s", err, r.out.String(), r.errb.String())
	default:
	}
}

// whenBundleRuns calls start once the bottle's bundle runs (bring-up may
// move the bottle to another subnet before that), with the network the
// stand-ins join and the labels that make the bottle's removal take them.
func (r *agentRun) whenBundleRuns(start func(network string, labels map[string]string)) {
	r.t.Helper()
	network := "bottle-" + r.name
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r.ended()
		if res, err := r.eng.ContainerInspect(context.Background(), network+"-bundle", client.ContainerInspectOptions{}); err == nil &&
			res.Container.State != nil && res.Container.State.Running {
			start(network, map[string]string{plan.LabelBottle: r.name, testenv.TestLabel: "1"})
			return
		}
	}
	r.t.Fatalf("the bundle never ran\nstdout:\n%s\nstderr:\n%s", r.out.String(), r.errb.String())
}

// wait waits for the run to end and returns its result.
func (r *agentRun) wait(limit time.Duration) error {
	r.t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(limit):
		r.cmd.Process.Kill()
		r.t.Fatalf("the run did not end\nstdout:\n%s\nstderr:\n%s", r.out.String(), r.errb.String())
		return nil
	}
}

// explain is what a failure message shows: the run's output, what the
// stand-in api logged, and the bottle's audit trail.
func (r *agentRun) explain(api testenv.Upstream) string {
	audit := docker(r.t, r.cfg, nil, "bottle", "audit", r.name)
	return fmt.Sprintf("\nstdout:\n%s\nstderr:\n%s\nstand-in:\n%s\naudit:\n%s", r.out.String(), r.errb.String(),
		containerLogs(r.t, r.eng, api), audit.stdout+audit.stderr)
}

// containerLogs is what a stand-in logged (its requests, never a value).
func containerLogs(t *testing.T, eng *client.Client, u testenv.Upstream) string {
	f := make(client.Filters).Add("label", testenv.TestLabel+"=1")
	cs, err := eng.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return err.Error()
	}
	for _, c := range cs.Items {
		for _, n := range c.NetworkSettings.Networks {
			if n.IPAddress == u.IP {
				rc, err := eng.ContainerLogs(context.Background(), c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
				if err != nil {
					return err.Error()
				}
				defer rc.Close()
				var b bytes.Buffer
				stdcopy.StdCopy(&b, &b, rc)
				return b.String()
			}
		}
	}
	return "(stand-in not found)"
}
