//go:build e2e

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestFollowInterruptedExits130: Ctrl-C on a followed stream, through the
// real docker CLI, exits 130, as `docker events` does.
func TestFollowInterruptedExits130(t *testing.T) {
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "fol", map[string]string{"bottle.yaml": "agent:\n  provider: shell\n  image: " + base + "\n" +
		"  command: [sleep, '600']\n"})

	for _, follow := range [][]string{{"events", "-f", name}, {"audit", "-f", name}} {
		cmd := exec.Command(testenv.DockerCLI(t), append([]string{"bottle"}, follow...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_BOTTLE_CACHE="+filepath.Join(cfg, "cache"))
		// Its own process group, as a terminal's foreground job, which
		// Ctrl-C signals whole.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The header is printed once the supervisor has answered: the
		// command follows from then on.
		sc := bufio.NewScanner(out)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "TIME") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%q printed no header: %q %s", follow, sc.Text(), stderr.String())
		}
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() {
		}
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("%q after Ctrl-C: %v, want exit 130\n%s", follow, err, stderr.String())
		}
	}
}
