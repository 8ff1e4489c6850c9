package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// An allow-always covers requests of the same kind, subject and scope: a
// push to the same ref with other protected paths (another scope) is held
// again, and deciding always on one held push settles only those of its
// scope (review M2).
func TestAllowAlwaysKeyedByScope(t *testing.T) {
	f := start(t, nil)
	push := func(scope string) approval.Request {
		return approval.Request{Kind: approval.Push, Subject: "refs/heads/bottle/x/work", Scope: scope, Detail: "paths " + scope}
	}
	first := f.ask(context.Background(), push("a"))
	other := f.ask(context.Background(), push("b"))
	ps := f.waitPending(t, 2)
	for _, p := range ps {
		if p.Detail == "paths a" {
			f.decide(t, f.operator, p.ID, approval.AllowAlways)
		}
	}
	if a := wait(t, first); a.d != approval.AllowAlways {
		t.Fatalf("first: %+v", a)
	}
	if left := f.pending(t, f.operator); len(left) != 1 || left[0].Detail != "paths b" {
		t.Fatalf("the other scope's request should still wait: %+v", left)
	}
	f.decide(t, f.operator, f.pending(t, f.operator)[0].ID, approval.Deny)
	if b := wait(t, other); b.d != approval.Deny {
		t.Fatalf("other scope: %+v", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, err := f.s.Decide(ctx, push("a")); d != approval.AllowAlways || err != nil {
		t.Errorf("the same scope again: %v %v", d, err)
	}
	again := f.ask(context.Background(), push("c"))
	f.decide(t, f.operator, f.waitPending(t, 1)[0].ID, approval.Deny)
	if c := wait(t, again); c.d != approval.Deny {
		t.Errorf("a new scope was not held: %+v", c)
	}
}
