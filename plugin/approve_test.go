package plugin

import (
	"context"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

func TestApproveAndDeny(t *testing.T) {
	b := newBottle(t, "dec")
	ctx := context.Background()

	held := b.hold(approval.Egress, "once.example:443")
	id := b.waitPending(t, 1)[0].ID
	out, _, err := runCommand(ctx, t, "approve", b.name, id[:6])
	if err != nil {
		t.Fatal(err)
	}
	if d := outcome(t, held); d != approval.AllowOnce {
		t.Fatalf("approve: %v", d)
	}
	if !strings.Contains(out, "Allowed once") || !strings.Contains(out, "once.example:443") || !strings.Contains(out, id) {
		t.Fatalf("approve output %q", out)
	}

	held = b.hold(approval.Egress, "always.example:443")
	id = b.waitPending(t, 1)[0].ID
	if _, _, err = runCommand(ctx, t, "approve", "--always", b.name, id); err != nil {
		t.Fatal(err)
	}
	if d := outcome(t, held); d != approval.AllowAlways {
		t.Fatalf("approve --always: %v", d)
	}
	if d, err := b.sup.Decide(ctx, approval.Request{Kind: approval.Egress, Subject: "always.example:443"}); d != approval.AllowAlways || err != nil {
		t.Fatalf("the same request again: %v %v", d, err)
	}

	held = b.hold(approval.Push, "refs/heads/main")
	id = b.waitPending(t, 1)[0].ID
	if out, _, err = runCommand(ctx, t, "deny", b.name, id); err != nil {
		t.Fatal(err)
	}
	if d := outcome(t, held); d != approval.Deny {
		t.Fatalf("deny: %v", d)
	}
	if !strings.HasPrefix(out, "Denied: push refs/heads/main") {
		t.Fatalf("deny output %q", out)
	}
	if _, _, err = runCommand(ctx, t, "deny", b.name, id); err == nil || !strings.Contains(err.Error(), "no pending request") {
		t.Fatalf("deny twice: %v", err)
	}

	// 17 requests: two must share a first hex digit, so that digit is
	// ambiguous and nothing is decided.
	for i := range 17 {
		b.hold(approval.Egress, "h"+string(rune('a'+i))+".example:443")
	}
	ps := b.waitPending(t, 17)
	seen := map[byte]bool{}
	var prefix string
	for _, p := range ps {
		if seen[p.ID[0]] {
			prefix = p.ID[:1]
			break
		}
		seen[p.ID[0]] = true
	}
	if _, _, err = runCommand(ctx, t, "approve", b.name, prefix); err == nil || !strings.Contains(err.Error(), "give more of the ID") {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if n := len(b.sup.Pending()); n != 17 {
		t.Fatalf("an ambiguous prefix decided something: %d pending", n)
	}
}
