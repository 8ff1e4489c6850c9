package bringup

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
)

// TestHealthAsksWithTheAgentsToken: the health route takes the agent's
// token, so the operator's is not sent to check health.
func TestHealthAsksWithTheAgentsToken(t *testing.T) {
	dir := t.TempDir()
	p := plan.Plan{Slug: "h", AgentTokenFile: filepath.Join(dir, "agent"), OperatorTokenFile: filepath.Join(dir, "operator")}
	os.WriteFile(p.AgentTokenFile, []byte("agent-token\n"), 0o600)
	os.WriteFile(p.OperatorTokenFile, []byte("operator-token\n"), 0o600)
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true,"bottle":"h","daemons":{"supervisor":{"ok":true}}}`))
	}))
	defer srv.Close()
	p.Endpoints = &plan.Endpoints{HostSupervise: strings.TrimPrefix(srv.URL, "http://")}
	if err := Health(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], "agent-token") {
		t.Errorf("health sent Authorization %q, want the agent's token", seen)
	}
	for _, a := range seen {
		if strings.Contains(a, "operator-token") {
			t.Errorf("health sent the operator's token")
		}
	}
}

// TestHealthThroughDialsThePlansSupervisor: through the engine, health is
// asked over the connection dial gives for the plan, never at a published
// port, which a remote engine's host has and the client does not.
func TestHealthThroughDialsThePlansSupervisor(t *testing.T) {
	dir := t.TempDir()
	p := plan.Plan{Slug: "h", AgentTokenFile: filepath.Join(dir, "agent")}
	p.Bundle.Container = "bottle-h-bundle"
	os.WriteFile(p.AgentTokenFile, []byte("agent-token\n"), 0o600)
	healthy := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if healthy {
			w.Write([]byte(`{"ok":true,"bottle":"h","daemons":{"supervisor":{"ok":true}}}`))
		} else {
			w.Write([]byte(`{"ok":false,"bottle":"h","daemons":{"gate":{"ok":false,"error":"starting"}}}`))
		}
	}))
	defer srv.Close()
	// The plan's published port is one nothing listens on.
	p.Endpoints = &plan.Endpoints{HostSupervise: "127.0.0.1:1"}
	var dialled []string
	health := HealthThrough(func(q plan.Plan) DialFunc {
		dialled = append(dialled, q.Bundle.Container)
		return func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", strings.TrimPrefix(srv.URL, "http://"))
		}
	})
	if err := health(context.Background(), p); err != nil {
		t.Fatalf("health through dial: %v", err)
	}
	if len(dialled) != 1 || dialled[0] != p.Bundle.Container {
		t.Errorf("dialled %q, want the plan's bundle %s", dialled, p.Bundle.Container)
	}
	healthy = false
	if err := health(context.Background(), p); err == nil || !strings.Contains(err.Error(), "gate: starting") {
		t.Errorf("health of an unhealthy bundle through dial: %v, want the gate's error", err)
	}
}
