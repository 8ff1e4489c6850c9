package plugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/hostcheck"
	"github.com/docker-bottle/docker-bottle/spec"
)

// On a remote engine the agent's ports would be published on the engine
// host's loopback: `run -p` and `port` refuse them with the reason; on a
// local engine they are published as ever, unless the test switch takes
// the bottle through the engine, which publishes none.
func TestPortsRefusedOnARemoteEngine(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "git-remote-bottle"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(hostcheck.EnvThroughEngine, "")
	ports := []spec.Port{{Agent: 8080}}
	for _, endpoint := range []string{"ssh://me@buildbox", "tcp://10.203.0.2:2376"} {
		err := checkTransport(context.Background(), endpoint, ports)
		if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "leave out -p") {
			t.Errorf("run -p on %s: %v, want the refusal with its reason", endpoint, err)
		}
		if err := refusePorts(endpoint); err == nil || !strings.Contains(err.Error(), endpoint) {
			t.Errorf("port on %s: %v, want a refusal naming the engine", endpoint, err)
		}
		if err := checkTransport(context.Background(), endpoint, nil); err != nil {
			t.Errorf("run without ports on %s: %v", endpoint, err)
		}
	}
	for _, endpoint := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"} {
		if err := checkTransport(context.Background(), endpoint, ports); err != nil {
			t.Errorf("run -p on the local engine %s: %v", endpoint, err)
		}
	}
	// The test switch takes a bottle on the local engine through the
	// engine, which publishes no port: -p is refused as on a remote one.
	t.Setenv(hostcheck.EnvThroughEngine, "1")
	for _, endpoint := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"} {
		if err := checkTransport(context.Background(), endpoint, ports); err == nil || !strings.Contains(err.Error(), "leave out -p") {
			t.Errorf("run -p on the local engine %s with the switch: %v, want a refusal", endpoint, err)
		}
		if err := refusePorts(endpoint); err != nil {
			t.Errorf("port on the local engine %s: %v", endpoint, err)
		}
	}
}
