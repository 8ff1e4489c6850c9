package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
)

// What a bottle.yaml that says nothing resolves to is what the bundle's
// daemons enforce when their config says nothing: the user is told the
// policy the bundle applies (once 5, 5 and 2 minutes in three places).
func TestDefaultsAgreeWithTheBundle(t *testing.T) {
	r := resolved(t, "name: a\n")
	path := filepath.Join(t.TempDir(), "gate.json")
	if err := os.WriteFile(path, []byte(`{"listen":"127.0.0.1:0","bottle":"a","repo":"/r","token_file":"/t"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := gate.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := r.PushPatterns("a"); !slices.Equal(g.Push.Refs, want) {
		t.Errorf("the gate pushes to %v by default, the spec says %v", g.Push.Refs, want)
	}
	spec := time.Duration(*r.Supervise.Timeout)
	if got := g.Approvals.Timeout.D(); got != spec {
		t.Errorf("the gate holds a push %s by default, the spec says %s", got, spec)
	}
	if got := time.Duration(proxy.DefaultApprovalTimeout); got != spec {
		t.Errorf("the proxy holds a connection %s by default, the spec says %s", got, spec)
	}
}
