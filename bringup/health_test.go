package bringup

import (
	"context"
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
