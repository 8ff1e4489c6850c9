package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

func TestAuditCommand(t *testing.T) {
	b := newBottle(t, "aud")
	ctx := context.Background()
	proxyLog, err := audit.Open(filepath.Join(b.plan.StageDir, "proxy.audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxyLog.Close()
	proxyLog.Tee(b.sup.AuditSource("proxy"))
	gateLog, err := audit.Open(filepath.Join(b.plan.StageDir, "gate.audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gateLog.Close()
	gateLog.Tee(b.sup.AuditSource("gate"))

	proxyLog.Write(map[string]any{"daemon": "proxy", "method": "CONNECT", "host": "api.github.com", "port": 443, "decision": "allow", "rule": "api.github.com"})
	gateLog.Write(map[string]any{"daemon": "gate", "event": "push", "decision": "deny", "refs": []map[string]string{{"ref": "refs/heads/main"}}, "reason": "refs/heads/main is not a ref this bottle may push"})
	b.sup.Decide(ctx, approval.Request{Kind: approval.Tool, Subject: "Bash"}) // not held: denied by policy

	out, _, err := runCommand(ctx, t, "audit", b.name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("table: %q", out)
	}
	for i, want := range [][]string{
		{"proxy", "allow", "CONNECT api.github.com:443"},
		{"gate", "deny", "push refs/heads/main (refs/heads/main is not"},
		{"supervisor", "deny", "approval.decided tool Bash by policy"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}

	out, _, err = runCommand(ctx, t, "audit", "--format", "json", b.name)
	if err != nil {
		t.Fatal(err)
	}
	var first api.AuditEntry
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&first); err != nil || first.Source != "proxy" ||
		!strings.Contains(string(first.Record), `"host":"api.github.com"`) {
		t.Fatalf("json: %v %q", err, out)
	}

	// Followed: what is kept, then new lines, until interrupted (the
	// docker CLI passes a Ctrl-C on by cancelling the context).
	var live, errOut testio.Buffer
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runCommandTo(cctx, t, &live, &errOut, "audit", "-f", b.name) }()
	live.WaitFor(t, "by policy", 30*time.Second)
	proxyLog.Write(map[string]any{"daemon": "proxy", "host": "evil.example", "port": 443, "decision": "deny", "reason": "not on the allowlist"})
	live.WaitFor(t, "evil.example:443 (not on the allowlist)", 30*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, ErrInterrupted) {
		t.Fatalf("follow: %v, want ErrInterrupted (exit 130)", err)
	}
}
