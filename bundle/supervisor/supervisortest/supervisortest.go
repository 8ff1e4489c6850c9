// Package supervisortest runs a real supervisor for the tests of what talks
// to it: the operator's client, the agent's hooks, the plugin's commands.
package supervisortest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

// Start makes a quiet supervisor of cfg and serves it on a loopback port
// until the test ends. It returns the supervisor, its address, and a stop
// that ends serving (and may be called again).
func Start(t testing.TB, cfg supervisor.Config) (*supervisor.Supervisor, string, func()) {
	t.Helper()
	s, err := supervisor.New(cfg, supervisor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() { stop(); s.Close() })
	return s, ln.Addr().String(), stop
}
