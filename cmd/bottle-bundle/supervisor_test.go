package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
)

func TestSupervisorUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"extra"}, {"--config"}, {"--nope"}} {
		if err := runSupervisor(context.Background(), args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"agent_token_file":"/a"}`), 0o600)
	if err := runSupervisor(context.Background(), []string{"--config", bad}); err == nil ||
		!strings.Contains(err.Error(), "operator_token_file") {
		t.Errorf("bad config: %v", err)
	}
}

// TestSupervisorRuns starts the daemon as the bundle does, checks its
// health through the client with the operator's token, and stops it.
func TestSupervisorRuns(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "agent.token"), []byte("a-token"), 0o600)
	os.WriteFile(filepath.Join(dir, "operator.token"), []byte("o-token"), 0o600)
	// A free port, taken back from the kernel: the daemon listens itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, _ := json.Marshal(supervisor.Config{
		Listen:            addr,
		Bottle:            "daemon",
		AgentTokenFile:    filepath.Join(dir, "agent.token"),
		OperatorTokenFile: filepath.Join(dir, "operator.token"),
		AuditFile:         filepath.Join(dir, "supervisor.audit"),
	})
	cfgFile := filepath.Join(dir, "supervisor.json")
	os.WriteFile(cfgFile, cfg, 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSupervisor(ctx, []string{"--config", cfgFile}) }()
	c, err := client.New(addr, "o-token")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := c.Health(context.Background())
		if err == nil && h.OK && h.Bottle == "daemon" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the daemon ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy: %+v %v", h, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "supervisor.audit")); err != nil {
		t.Errorf("audit file: %v", err)
	}
}
