package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// agent is where the agent listens: it answers "echo: " then what it is
// sent.
func agent(t *testing.T) string { return testio.Echo(t, "echo: ").String() }

func TestRelay(t *testing.T) {
	dir := t.TempDir()
	target := agent(t)
	pool := make([]net.Listener, 2)
	for i := range pool {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pool[i] = l
	}
	port := func(i int) string { return strconv.Itoa(pool[i].Addr().(*net.TCPAddr).Port) }
	mapFile := filepath.Join(dir, "ports.json")
	if err := os.WriteFile(mapFile, []byte(`{"`+port(0)+`": "`+target+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := audit.Open(filepath.Join(dir, "audit.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{MapFile: mapFile, Bottle: "b1"}, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(pool))
	for _, l := range pool {
		go func() { done <- r.Serve(ctx, l) }()
	}

	talk := func(i int) (string, error) {
		// From another loopback address than the agent's: the relay
		// refuses the agent itself.
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := d.Dial("tcp", pool[i].Addr().String())
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "hello\n")
		return bufio.NewReader(c).ReadString('\n')
	}
	if got, err := talk(0); got != "echo: hello\n" {
		t.Errorf("through the mapped port: %q %v", got, err)
	}
	if got, err := talk(1); err == nil && got != "" {
		t.Errorf("an unmapped pool port relayed: %q", got)
	}
	// Adding a port is writing the map: the next connection sees it.
	if err := os.WriteFile(mapFile, []byte(`{"`+port(0)+`": "`+target+`", "`+port(1)+`": "`+target+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := talk(1); got != "echo: hello\n" {
		t.Errorf("after adding the port: %q %v", got, err)
	}

	cancel()
	for range pool {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not stop with its context")
		}
	}
	a.Close()
	b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var allow, deny int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec record
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Daemon != "relay" {
			continue
		}
		switch rec.Decision {
		case "allow":
			allow++
			if rec.Target != target || rec.Client == "" || rec.BytesIn == 0 || rec.BytesOut == 0 {
				t.Errorf("allow line %s", line)
			}
		case "deny":
			deny++
		}
	}
	if allow != 2 || deny != 1 {
		t.Errorf("audit has %d allowed and %d refused inbound connections, want 2 and 1:\n%s", allow, deny, b)
	}
}

func TestReadMap(t *testing.T) {
	dir := t.TempDir()
	if m, err := ReadMap(filepath.Join(dir, "none")); err != nil || len(m) != 0 {
		t.Errorf("missing file: %v %v", m, err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, maxMapBytes+1), 0o600)
	if _, err := ReadMap(big); err == nil {
		t.Error("an oversized map was read")
	}
}

// TestRelayRefusesTheBottle: a connection from the agent's own address is
// refused, whatever the map says.
func TestRelayRefusesTheBottle(t *testing.T) {
	dir := t.TempDir()
	target := agent(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	mapFile := filepath.Join(dir, "ports.json")
	if err := os.WriteFile(mapFile, []byte(`{"`+port+`": "`+target+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := New(Config{MapFile: mapFile}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Serve(ctx, l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello\n")
	if got, _ := bufio.NewReader(c).ReadString('\n'); got != "" {
		t.Errorf("a connection from the agent's own address was relayed: %q", got)
	}
}
