package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunGate(t *testing.T) {
	if err := runGate(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("without --config: %v", err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to make the test repository: %v", err)
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "gate.json")
	body := fmt.Sprintf(`{"listen":%q,"bottle":"b1","repo":%q,"token_file":%q}`, addr, repo, tok)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGate(ctx, []string{"--config", cfg}) }()
	var resp *http.Response
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
		req.SetBasicAuth("x", "s3cret")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("gate did not come up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runGate: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("runGate did not stop with its context")
	}
}
