package supervisor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

func TestAuthRoutesAndStatuses(t *testing.T) {
	f := start(t, nil)
	basic := func(tok string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("bottle:"+tok))
	}
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"no token", "GET", api.PathHealth, "", "", 401},
		{"no token, unknown route", "GET", "/nope", "", "", 401},
		{"no token, post event", "POST", api.PathEvents, "", `{"type":"x"}`, 401},
		{"wrong bearer", "GET", api.PathHealth, "Bearer " + strings.Repeat("0", 64), "", 401},
		{"wrong basic", "GET", api.PathHealth, basic("nope"), "", 401},
		{"other scheme", "GET", api.PathHealth, "Token " + f.operator, "", 401},
		{"agent bearer health", "GET", api.PathHealth, "Bearer " + f.agent, "", 200},
		{"agent basic health", "GET", api.PathHealth, basic(f.agent), "", 200},
		{"operator basic health", "GET", api.PathHealth, basic(f.operator), "", 200},
		{"unknown route", "GET", "/v1/nope", "Bearer " + f.operator, "", 404},
		{"trailing slash", "GET", api.PathEvents + "/", "Bearer " + f.operator, "", 404},
		{"wrong method health", "POST", api.PathHealth, "Bearer " + f.operator, "", 405},
		{"wrong method approvals", "DELETE", api.PathApprovals, "Bearer " + f.operator, "", 405},
		{"get one approval", "GET", api.ApprovalPath("abc"), "Bearer " + f.operator, "", 405},
		{"agent lists events", "GET", api.PathEvents, "Bearer " + f.agent, "", 403},
		{"agent follows events", "GET", api.PathEvents + "?follow=1", "Bearer " + f.agent, "", 403},
		{"agent reads audit", "GET", api.PathAudit, "Bearer " + f.agent, "", 403},
		{"agent decides", "POST", api.ApprovalPath("abc"), "Bearer " + f.agent, `{"decision":"allow-once"}`, 403},
		{"agent lists approvals", "GET", api.PathApprovals, "Bearer " + f.agent, "", 200},
		{"agent posts event", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":"tool.use","message":"ls"}`, 201},
		{"bad JSON", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":`, 400},
		{"not an object", "POST", api.PathEvents, "Bearer " + f.agent, `[1]`, 400},
		{"trailing data", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":"a"}{}`, 400},
		{"agent poses as proxy", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":"x","source":"proxy"}`, 400},
		{"no type", "POST", api.PathEvents, "Bearer " + f.agent, `{"message":"hi"}`, 400},
		{"type with space", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":"a b"}`, 400},
		{"too large", "POST", api.PathEvents, "Bearer " + f.agent, `{"type":"x","message":"` + strings.Repeat("a", DefaultMaxEventBytes) + `"}`, 413},
		{"bad decision", "POST", api.ApprovalPath("abc"), "Bearer " + f.operator, `{"decision":"maybe"}`, 400},
		{"decision bad JSON", "POST", api.ApprovalPath("abc"), "Bearer " + f.operator, `nope`, 400},
		{"unknown id", "POST", api.ApprovalPath("abc"), "Bearer " + f.operator, `{"decision":"deny"}`, 404},
		{"bad after", "GET", api.PathEvents + "?after=x", "Bearer " + f.operator, "", 400},
		{"bad follow", "GET", api.PathAudit + "?follow=maybe", "Bearer " + f.operator, "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, f.url+tc.path, nil)
			if body != nil {
				req, err = http.NewRequest(tc.method, f.url+tc.path, body)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.want, e.Error)
			}
			switch tc.want {
			case 401:
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			case 405:
				if resp.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			}
			if tc.want >= 400 && e.Error == "" {
				t.Error("error answer without a JSON error message")
			}
		})
	}
}

// TestAgentCannotApproveItsOwnRequest is the promise of the two roles: the
// agent sees its held request but cannot decide it, whatever decision or
// credential form it tries; the request stays held until the operator
// decides (first case) or the timeout denies it (second case).
func TestAgentCannotApproveItsOwnRequest(t *testing.T) {
	tryAll := func(t *testing.T, f *fixture, id string) {
		t.Helper()
		for _, d := range []approval.Decision{approval.AllowOnce, approval.AllowAlways, approval.Deny} {
			code, body := f.decide(t, f.agent, id, d)
			if code != http.StatusForbidden {
				t.Fatalf("agent token deciding %s: %d %s, want 403", d, code, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, f.url+api.ApprovalPath(id), strings.NewReader(`{"decision":"allow-always"}`))
		req.SetBasicAuth("bottle", f.agent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("agent token as Basic deciding: %d, want 403", resp.StatusCode)
		}
	}

	t.Run("until the operator decides", func(t *testing.T) {
		f := start(t, nil)
		res := f.ask(context.Background(), approval.Request{Kind: approval.Egress, Subject: "evil.example:443", Requester: "10.0.0.3:5555"})
		f.waitPending(t, 1)
		mine := f.pending(t, f.agent) // the agent may see its own request
		if len(mine) != 1 || mine[0].Subject != "evil.example:443" || mine[0].ID == "" {
			t.Fatalf("agent's view of pending: %+v", mine)
		}
		id := mine[0].ID
		tryAll(t, f, id)
		if p := f.pending(t, f.operator); len(p) != 1 || p[0].ID != id {
			t.Fatalf("after the agent's attempts, pending is %+v", p)
		}
		select {
		case a := <-res:
			t.Fatalf("the request was settled by the agent's attempts: %+v", a)
		default:
		}
		if code, body := f.decide(t, f.operator, id, approval.Deny); code != 200 {
			t.Fatalf("operator deny: %d %s", code, body)
		}
		if a := wait(t, res); a.d != approval.Deny || a.err != nil {
			t.Fatalf("outcome %+v, want deny", a)
		}
		lines := decided(f.auditLines(t), "evil.example:443")
		if len(lines) != 1 || lines[0]["by"] != "operator" || lines[0]["decision"] != "deny" {
			t.Fatalf("audit: %v", lines)
		}
	})

	t.Run("until the timeout denies", func(t *testing.T) {
		f := start(t, func(c *Config) { c.Approvals.Timeout = dur(3 * time.Second) })
		res := f.ask(context.Background(), approval.Request{Kind: approval.Push, Subject: "refs/heads/main"})
		id := f.waitPending(t, 1)[0].ID
		tryAll(t, f, id)
		if a := wait(t, res); a.d != approval.Deny || !errors.Is(a.err, approval.ErrNoDecision) {
			t.Fatalf("outcome %+v, want deny with no decision in time", a)
		}
		lines := decided(f.auditLines(t), "refs/heads/main")
		if len(lines) != 1 || lines[0]["by"] != "timeout" {
			t.Fatalf("audit: %v", lines)
		}
	})
}

func TestApprovalDecisions(t *testing.T) {
	req := approval.Request{Kind: approval.Egress, Subject: "example.com:443", Detail: "CONNECT example.com:443", Requester: "10.0.0.3:1"}

	t.Run("allow-once asks again next time", func(t *testing.T) {
		f := start(t, nil)
		res := f.ask(context.Background(), req)
		p := f.waitPending(t, 1)[0]
		if p.Kind != req.Kind || p.Detail != req.Detail || p.Requester != req.Requester || p.Since.IsZero() ||
			!p.Deadline.After(p.Since) || len(p.ID) != 32 {
			t.Fatalf("pending %+v", p)
		}
		code, body := f.decide(t, f.operator, p.ID, approval.AllowOnce)
		var d api.Decided
		if code != 200 || json.Unmarshal(body, &d) != nil || d.Decision != approval.AllowOnce || d.ID != p.ID {
			t.Fatalf("decide: %d %s", code, body)
		}
		if a := wait(t, res); a.d != approval.AllowOnce || a.err != nil {
			t.Fatalf("outcome %+v", a)
		}
		if code, _ := f.decide(t, f.operator, p.ID, approval.Deny); code != 404 {
			t.Fatalf("deciding twice: %d, want 404", code)
		}
		res = f.ask(context.Background(), req)
		p2 := f.waitPending(t, 1)[0]
		if p2.ID == p.ID {
			t.Fatal("the same id twice")
		}
		f.decide(t, f.operator, p2.ID, approval.Deny)
		if a := wait(t, res); a.d != approval.Deny {
			t.Fatalf("second outcome %+v", a)
		}
	})

	t.Run("allow-always passes the second ask without a human", func(t *testing.T) {
		f := start(t, nil)
		res := f.ask(context.Background(), req)
		p := f.waitPending(t, 1)[0]
		f.decide(t, f.operator, p.ID, approval.AllowAlways)
		if a := wait(t, res); a.d != approval.AllowAlways || a.err != nil {
			t.Fatalf("outcome %+v", a)
		}
		// No one answers now: a held request would end with the context.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := f.s.Decide(ctx, req)
		if d != approval.AllowAlways || err != nil {
			t.Fatalf("second ask: %v %v", d, err)
		}
		lines := decided(f.auditLines(t), req.Subject)
		if len(lines) != 2 || lines[0]["by"] != "operator" || lines[1]["by"] != "remembered" || lines[1]["decision"] != "allow-always" {
			t.Fatalf("audit: %v", lines)
		}
		// Remembered per kind and subject: another host, or a push with
		// the same subject, is still held.
		other := f.ask(context.Background(), approval.Request{Kind: approval.Egress, Subject: "example.org:443"})
		push := f.ask(context.Background(), approval.Request{Kind: approval.Push, Subject: req.Subject})
		for _, p := range f.waitPending(t, 2) {
			f.decide(t, f.operator, p.ID, approval.Deny)
		}
		if a, b := wait(t, other), wait(t, push); a.d != approval.Deny || b.d != approval.Deny {
			t.Fatalf("others: %+v %+v", a, b)
		}
	})

	t.Run("the same request asked again joins the one held", func(t *testing.T) {
		f := start(t, nil)
		// Two hooks for one tool call, or two connections to one host:
		// one request for the human, one answer for both askers.
		first := f.ask(context.Background(), req)
		f.waitPending(t, 1)
		fromAnotherConn := req
		fromAnotherConn.Requester = "10.0.0.3:7"
		second := f.ask(context.Background(), fromAnotherConn)
		// One asker giving up leaves the request to the other.
		ctx, cancel := context.WithCancel(context.Background())
		third := f.ask(ctx, req)
		f.waitAskers(t, 3)
		cancel()
		if a := wait(t, third); a.d != approval.Deny || !errors.Is(a.err, context.Canceled) {
			t.Fatalf("withdrawn asker: %+v", a)
		}
		ps := f.pending(t, f.operator)
		if len(ps) != 1 {
			t.Fatalf("want the one request pending, have %+v", ps)
		}
		f.decide(t, f.operator, ps[0].ID, approval.AllowOnce)
		if a, b := wait(t, first), wait(t, second); a.d != approval.AllowOnce || b.d != approval.AllowOnce || a.err != nil || b.err != nil {
			t.Fatalf("outcomes %+v %+v", a, b)
		}
		lines := f.auditLines(t)
		if len(lines) != 2 || lines[0]["decision"] != "pending" || lines[1]["decision"] != "allow-once" {
			t.Fatalf("one request, one decision in the audit: %v", lines)
		}
	})

	t.Run("allow-always settles the same requests already waiting", func(t *testing.T) {
		f := start(t, nil)
		first := f.ask(context.Background(), req)
		// The same subject from another address: a request of its own.
		again := req
		again.Requester = "10.0.0.4:1"
		second := f.ask(context.Background(), again)
		ps := f.waitPending(t, 2)
		f.decide(t, f.operator, ps[0].ID, approval.AllowAlways)
		if a, b := wait(t, first), wait(t, second); !a.d.Allowed() || !b.d.Allowed() {
			t.Fatalf("outcomes %+v %+v", a, b)
		}
		if p := f.pending(t, f.operator); len(p) != 0 {
			t.Fatalf("still pending: %+v", p)
		}
	})

	t.Run("deny", func(t *testing.T) {
		f := start(t, nil)
		res := f.ask(context.Background(), req)
		p := f.waitPending(t, 1)[0]
		f.decide(t, f.operator, p.ID, approval.Deny)
		if a := wait(t, res); a.d != approval.Deny || a.err != nil {
			t.Fatalf("outcome %+v", a)
		}
		// A deny is not remembered: the next ask is held again.
		res = f.ask(context.Background(), req)
		p = f.waitPending(t, 1)[0]
		f.decide(t, f.operator, p.ID, approval.AllowOnce)
		if a := wait(t, res); a.d != approval.AllowOnce {
			t.Fatalf("outcome %+v", a)
		}
	})

	t.Run("timeout denies", func(t *testing.T) {
		f := start(t, func(c *Config) { c.Approvals.Timeout = dur(50 * time.Millisecond) })
		ev := f.follow(t, api.PathEvents+"?follow=1", f.operator)
		d, err := f.s.Decide(context.Background(), req)
		if d != approval.Deny || !errors.Is(err, approval.ErrNoDecision) {
			t.Fatalf("outcome %v %v", d, err)
		}
		if p := f.pending(t, f.operator); len(p) != 0 {
			t.Fatalf("still pending: %+v", p)
		}
		lines := decided(f.auditLines(t), req.Subject)
		if len(lines) != 1 || lines[0]["by"] != "timeout" || lines[0]["decision"] != "deny" || lines[0]["id"] == "" ||
			!strings.HasPrefix(str(lines[0]["reason"]), "no decision in time") {
			t.Fatalf("audit: %v", lines)
		}
		var e1, e2 api.Event
		json.Unmarshal(ev.next(t), &e1)
		json.Unmarshal(ev.next(t), &e2)
		if e1.Type != EventApprovalPending || e2.Type != EventApprovalDecided || !strings.Contains(e2.Message, "no decision in time") ||
			strings.Contains(e2.Message, "operator") {
			t.Fatalf("events %+v %+v", e1, e2)
		}
	})

	t.Run("the asker's deadline is no decision in time", func(t *testing.T) {
		// The gate and the proxy ask with deadlines of their own; the one
		// that passes first is no decision in time, never a human's deny
		// nor a withdrawal.
		f := start(t, func(c *Config) { c.Approvals.Timeout = dur(time.Minute) })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		res := f.ask(ctx, req)
		if p := f.waitPending(t, 1)[0]; time.Until(p.Deadline) > time.Second {
			t.Errorf("the request shows the policy's deadline %s, not the asker's", p.Deadline)
		}
		if a := wait(t, res); a.d != approval.Deny || !errors.Is(a.err, approval.ErrNoDecision) {
			t.Fatalf("outcome %+v", a)
		}
		lines := decided(f.auditLines(t), req.Subject)
		if len(lines) != 1 || lines[0]["by"] != "timeout" || !strings.HasPrefix(str(lines[0]["reason"]), "no decision in time") {
			t.Fatalf("audit: %v", lines)
		}
	})

	t.Run("timeout 0 denies at once", func(t *testing.T) {
		f := start(t, func(c *Config) { c.Approvals.Timeout = dur(0) })
		d, err := f.s.Decide(context.Background(), req)
		if d != approval.Deny || !errors.Is(err, approval.ErrNotHeld) {
			t.Fatalf("outcome %v %v", d, err)
		}
		lines := f.auditLines(t)
		if len(lines) != 1 || lines[0]["event"] != "approval.decided" || lines[0]["by"] != "policy" {
			t.Fatalf("audit (nothing may be held): %v", lines)
		}
		var evs []api.Event
		f.get(t, api.PathEvents, f.operator, &evs)
		if len(evs) != 1 || evs[0].Type != EventApprovalDecided {
			t.Fatalf("events: %+v", evs)
		}
	})

	t.Run("a kind the policy does not hold is denied at once", func(t *testing.T) {
		f := start(t, nil) // holds egress and push
		d, err := f.s.Decide(context.Background(), approval.Request{Kind: approval.Tool, Subject: "Bash"})
		if d != approval.Deny || !errors.Is(err, approval.ErrNotHeld) {
			t.Fatalf("outcome %v %v", d, err)
		}
		if lines := decided(f.auditLines(t), "Bash"); len(lines) != 1 || lines[0]["by"] != "policy" {
			t.Fatalf("audit: %v", lines)
		}
	})

	t.Run("the asker's cancellation withdraws the request", func(t *testing.T) {
		f := start(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		res := f.ask(ctx, req)
		id := f.waitPending(t, 1)[0].ID
		cancel()
		a := wait(t, res)
		if a.d != approval.Deny || !errors.Is(a.err, context.Canceled) {
			t.Fatalf("outcome %+v", a)
		}
		if p := f.pending(t, f.operator); len(p) != 0 {
			t.Fatalf("still pending: %+v", p)
		}
		if code, _ := f.decide(t, f.operator, id, approval.AllowOnce); code != 404 {
			t.Fatalf("deciding a withdrawn request: %d, want 404", code)
		}
		if lines := decided(f.auditLines(t), req.Subject); len(lines) != 1 || lines[0]["by"] != "requester" {
			t.Fatalf("audit: %v", lines)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		f := start(t, nil)
		for _, r := range []approval.Request{
			{Kind: "email", Subject: "x"},
			{Kind: approval.Egress},
			{Kind: approval.Egress, Subject: strings.Repeat("a", maxSubject+1)},
		} {
			if d, err := f.s.Decide(context.Background(), r); d != approval.Deny || err == nil {
				t.Errorf("%.40v: %v %v, want deny and an error", r, d, err)
			}
		}
	})

	t.Run("a flood of one kind leaves room for the others", func(t *testing.T) {
		f := start(t, func(c *Config) {
			c.Approvals.Kinds = []approval.Kind{approval.Egress, approval.Push, approval.Tool}
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The agent asks for as many tool calls as the queue holds.
		var floods []<-chan asked
		for i := range DefaultMaxPending + 10 {
			floods = append(floods, f.ask(ctx, approval.Request{Kind: approval.Tool, Subject: fmt.Sprintf("Bash(x%d)", i)}))
		}
		f.waitPending(t, DefaultMaxPendingPerKind)
		limited := 0
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			limited = 0
			for _, l := range f.auditLines(t) {
				if l["by"] == "limit" && l["kind"] == "tool" {
					limited++
				}
			}
			if limited >= DefaultMaxPending+10-DefaultMaxPendingPerKind || time.Now().After(deadline) {
				break
			}
		}
		if limited != DefaultMaxPending+10-DefaultMaxPendingPerKind {
			t.Errorf("%d tool asks denied by the limit, want %d", limited, DefaultMaxPending+10-DefaultMaxPendingPerKind)
		}
		// A push and an egress request are still held for the human.
		push := f.ask(ctx, approval.Request{Kind: approval.Push, Subject: "refs/heads/bottle/x/work"})
		egress := f.ask(ctx, approval.Request{Kind: approval.Egress, Subject: "api.example.com:443"})
		ps := f.waitPending(t, DefaultMaxPendingPerKind+2)
		for _, p := range ps {
			if p.Kind != approval.Tool {
				f.decide(t, f.operator, p.ID, approval.AllowOnce)
			}
		}
		if a, b := wait(t, push), wait(t, egress); a.d != approval.AllowOnce || b.d != approval.AllowOnce {
			t.Fatalf("push %+v, egress %+v: want both held and allowed", a, b)
		}
		cancel()
		for _, c := range floods {
			wait(t, c)
		}
	})

	t.Run("max pending", func(t *testing.T) {
		f := start(t, func(c *Config) { c.Limits.MaxPending = 2 })
		a := f.ask(context.Background(), approval.Request{Kind: approval.Egress, Subject: "a:443"})
		b := f.ask(context.Background(), approval.Request{Kind: approval.Egress, Subject: "b:443"})
		f.waitPending(t, 2)
		d, err := f.s.Decide(context.Background(), approval.Request{Kind: approval.Egress, Subject: "c:443"})
		if d != approval.Deny || !errors.Is(err, approval.ErrNotHeld) {
			t.Fatalf("third: %v %v", d, err)
		}
		if lines := decided(f.auditLines(t), "c:443"); len(lines) != 1 || lines[0]["by"] != "limit" {
			t.Fatalf("audit: %v", lines)
		}
		f.s.Close() // denies what is held
		if x, y := wait(t, a), wait(t, b); x.d != approval.Deny || y.d != approval.Deny {
			t.Fatalf("after Close: %+v %+v", x, y)
		}
		if d, _ := f.s.Decide(context.Background(), req); d != approval.Deny {
			t.Fatalf("after Close: %v", d)
		}
	})
}

// TestApprovalsConcurrent races askers, the operator deciding over HTTP,
// cancellations and timeouts; run with -race. Every request must be settled
// exactly once and nothing may stay pending.
func TestApprovalsConcurrent(t *testing.T) {
	f := start(t, func(c *Config) {
		c.Approvals.Timeout = dur(2 * time.Second)
		c.Limits.MaxPending = 1000
	})
	const n = 60
	results := make(chan asked, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%5 == 0 {
				// Askers give up at staggered times, the scenario: any
				// interleaving with the deciders must hold.
				go func() { time.Sleep(time.Duration(i) * time.Millisecond); cancel() }()
			}
			d, err := f.s.Decide(ctx, approval.Request{Kind: approval.Egress, Subject: fmt.Sprintf("h%d:443", i%7)})
			results <- asked{d, err}
		}()
	}
	stop := make(chan struct{})
	var deciders sync.WaitGroup
	for w := range 3 {
		deciders.Add(1)
		go func() {
			defer deciders.Done()
			decisions := []approval.Decision{approval.AllowOnce, approval.Deny, approval.AllowAlways}
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range f.s.Pending() {
					f.s.Resolve(p.ID, decisions[(k+w)%3])
				}
				time.Sleep(time.Millisecond) // deciders keep coming, as the scenario; not a wait
			}
		}()
	}
	wg.Wait()
	close(stop)
	deciders.Wait()
	close(results)
	count := 0
	for a := range results {
		count++
		if a.err != nil && a.d != approval.Deny {
			t.Errorf("an error with %v", a.d)
		}
	}
	if count != n {
		t.Fatalf("%d results, want %d", count, n)
	}
	if p := f.s.Pending(); len(p) != 0 {
		t.Fatalf("still pending: %d", len(p))
	}
	// Each held request has one pending line and exactly one decided line.
	ids := map[string]int{}
	for _, l := range f.auditLines(t) {
		if id, _ := l["id"].(string); id != "" && l["event"] == "approval.decided" {
			ids[id]++
		}
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("request %s settled %d times", id, c)
		}
	}
}

func TestEventsListAndStream(t *testing.T) {
	f := start(t, nil)
	live := f.follow(t, api.PathEvents+"?follow=1", f.operator)
	code, body := f.call(t, http.MethodPost, api.PathEvents, f.agent,
		map[string]any{"type": "tool.use", "message": "Bash: ls", "data": map[string]any{"tool": "Bash"}})
	if code != http.StatusCreated {
		t.Fatalf("post: %d %s", code, body)
	}
	var posted api.Event
	json.Unmarshal(body, &posted)
	if posted.Seq != 1 || posted.Source != api.SourceAgent || posted.Time.IsZero() {
		t.Fatalf("posted event %+v", posted)
	}
	f.s.Emit(api.Event{Source: "proxy", Type: "egress.deny", Message: "evil.example:443"})
	f.call(t, http.MethodPost, api.PathEvents, f.operator, map[string]any{"type": "note"})

	var got []api.Event
	f.get(t, api.PathEvents, f.operator, &got)
	if len(got) != 3 {
		t.Fatalf("list: %+v", got)
	}
	want := []struct{ source, typ string }{{"agent", "tool.use"}, {"proxy", "egress.deny"}, {"operator", "note"}}
	for i, w := range want {
		if got[i].Seq != uint64(i+1) || got[i].Source != w.source || got[i].Type != w.typ {
			t.Errorf("event %d: %+v, want %v", i, got[i], w)
		}
	}
	if string(got[0].Data) != `{"tool":"Bash"}` || got[0].Message != "Bash: ls" {
		t.Errorf("first event lost its content: %+v", got[0])
	}
	for i, w := range want {
		var e api.Event
		if err := json.Unmarshal(live.next(t), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) || e.Source != w.source || e.Type != w.typ {
			t.Errorf("live event %d: %+v, want %v", i, e, w)
		}
	}
	f.get(t, api.PathEvents+"?after=2", f.operator, &got)
	if len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("after=2: %+v", got)
	}
	// A follower that starts later gets what is kept after its mark, then
	// what comes.
	late := f.follow(t, api.PathEvents+"?follow=1&after=2", f.operator)
	f.s.Emit(api.Event{Type: "later"})
	for _, seq := range []uint64{3, 4} {
		var e api.Event
		json.Unmarshal(late.next(t), &e)
		if e.Seq != seq {
			t.Fatalf("late follower got %+v, want seq %d", e, seq)
		}
	}
}

func TestMergedAudit(t *testing.T) {
	f := start(t, func(c *Config) { c.AuditFile = filepath.Join(c.AgentTokenFile, "..", "supervisor.audit") })
	live := f.follow(t, api.PathAudit+"?follow=1", f.operator)

	proxyLog, err := audit.Open(filepath.Join(f.dir, "proxy.audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer proxyLog.Close()
	proxyLog.Tee(f.s.AuditSource("proxy"))
	gateLog, err := audit.Open(filepath.Join(f.dir, "gate.audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gateLog.Close()
	gateLog.Tee(f.s.AuditSource("gate"))

	if err := proxyLog.Write(map[string]any{"daemon": "proxy", "host": "api.github.com", "port": 443, "decision": "allow"}); err != nil {
		t.Fatal(err)
	}
	if err := gateLog.Write(map[string]any{"event": "push", "decision": "deny"}); err != nil {
		t.Fatal(err)
	}
	f.s.Decide(context.Background(), approval.Request{Kind: approval.Tool, Subject: "Bash"}) // denied by policy

	var es []api.AuditEntry
	f.get(t, api.PathAudit, f.operator, &es)
	if len(es) != 3 {
		t.Fatalf("merged audit: %+v", es)
	}
	sources := []string{"proxy", "gate", "supervisor"}
	for i, e := range es {
		var rec map[string]any
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) || e.Source != sources[i] || rec["time"] == nil {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	for i := range sources {
		var e api.AuditEntry
		json.Unmarshal(live.next(t), &e)
		if e.Source != sources[i] {
			t.Errorf("live entry %d: %+v", i, e)
		}
	}
	// The supervisor's own line is also in its audit file.
	b, err := os.ReadFile(filepath.Join(f.dir, "supervisor.audit"))
	if err != nil || !strings.Contains(string(b), `"subject":"Bash"`) {
		t.Fatalf("supervisor audit file: %v %s", err, b)
	}
	if st, _ := os.Stat(filepath.Join(f.dir, "supervisor.audit")); st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v", st.Mode())
	}
}

func TestLimitsHold(t *testing.T) {
	f := start(t, func(c *Config) {
		c.Limits.MaxEvents = 16
		c.Limits.MaxAudit = 8
		c.Limits.MaxFollowers = 1
	})
	live := f.follow(t, api.PathEvents+"?follow=1", f.operator)
	if code, body := f.call(t, http.MethodGet, api.PathAudit+"?follow=1", f.operator, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("second live stream: %d %s, want 503", code, body)
	}
	src := f.s.AuditSource("proxy")
	const n = 5000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 4 {
				f.s.Emit(api.Event{Source: "proxy", Type: "egress", Message: fmt.Sprint(w, i)})
				src([]byte(fmt.Sprintf(`{"time":"x","n":%d}`, i)))
			}
		}()
	}
	wg.Wait()
	// The first 2 (16/8) and the newest 16; none of these is important.
	if got := f.s.events.len(); got != 18 {
		t.Fatalf("kept %d events, want 18", got)
	}
	var evs []api.Event
	f.get(t, api.PathEvents, f.operator, &evs)
	if len(evs) != 19 || evs[0].Seq != 1 || evs[1].Seq != 2 || evs[2].Type != EventDropped || evs[3].Seq != n-15 || evs[18].Seq != n {
		t.Fatalf("list after %d events: %d items, %+v", n, len(evs), evs[:4])
	}
	var es []api.AuditEntry
	f.get(t, api.PathAudit, f.operator, &es)
	if len(es) != 10 || es[0].Seq != 1 || !strings.Contains(string(es[1].Record), `"dropped_lines":`+fmt.Sprint(n-1-8)) || es[9].Seq != n {
		t.Fatalf("audit kept %d: %v", len(es), es[:2])
	}
	// The slow live reader was not waited for; it reads on, in order, and
	// ends with the newest.
	var last uint64
	for last < n {
		var e api.Event
		if err := json.Unmarshal(live.next(t), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq <= last {
			t.Fatalf("stream went back from %d to %d", last, e.Seq)
		}
		last = e.Seq
	}
	// Too-large or invalid input from inside the bundle is dropped, not
	// kept.
	src([]byte(`not json`))
	f.s.Emit(api.Event{Type: "x", Data: json.RawMessage(`{bad`)})
	f.get(t, api.PathAudit, f.operator, &es)
	if es[len(es)-1].Seq != n {
		t.Fatal("an invalid audit line was kept")
	}
	f.get(t, api.PathEvents+fmt.Sprintf("?after=%d", n), f.operator, &evs)
	if len(evs) != 1 || evs[0].Data != nil {
		t.Fatalf("event with bad data: %+v", evs)
	}
}

func TestHealth(t *testing.T) {
	f := start(t, nil)
	var h api.Health
	f.get(t, api.PathHealth, f.agent, &h)
	if !h.OK || !h.Daemons["supervisor"].OK || h.Bottle != "test" {
		t.Fatalf("alone: %+v", h)
	}
	f.s.AddHealth("proxy", func() error { return nil })
	f.s.AddHealth("gate", func() error { return errors.New("repository missing") })
	code, body := f.call(t, http.MethodGet, api.PathHealth, f.operator, nil)
	json.Unmarshal(body, &h)
	if code != http.StatusServiceUnavailable || h.OK || !h.Daemons["proxy"].OK || h.Daemons["gate"].Error != "repository missing" {
		t.Fatalf("one failing: %d %s", code, body)
	}

	g := start(t, nil)
	g.s.AddHealth("proxy", func() error { panic("boom") })
	block := make(chan struct{})
	defer close(block)
	g.s.AddHealth("gate", func() error { <-block; return nil })
	code, body = g.call(t, http.MethodGet, api.PathHealth, g.operator, nil)
	h = api.Health{}
	json.Unmarshal(body, &h)
	if code != http.StatusServiceUnavailable || h.Daemons["proxy"].OK || !strings.Contains(h.Daemons["gate"].Error, "no answer") {
		t.Fatalf("panicking and stuck checks: %d %s", code, body)
	}
}

func TestServeStopsWithOpenStreams(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "agent-token")
	writeFile(t, filepath.Join(dir, "o"), "operator-token")
	s, err := New(Config{AgentTokenFile: filepath.Join(dir, "a"), OperatorTokenFile: filepath.Join(dir, "o")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &fixture{s: s, operator: "operator-token"}
	ln, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	st := f.follow(t, api.PathEvents+"?follow=1", f.operator)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return with a stream open")
	}
	select {
	case _, ok := <-st.lines:
		if ok {
			t.Fatal("unexpected line")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end")
	}
}

func TestConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"bottle":"b","agent_token_file":"/a","operator_token_file":"/o",
		"approvals":{"kinds":["egress","tool"]},"limits":{"max_events":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Approvals.timeout() != DefaultTimeout || !c.Approvals.asks(approval.Tool) || c.Approvals.asks(approval.Push) {
		t.Errorf("policy %+v", c.Approvals)
	}
	if l := c.Limits.withDefaults(); l.MaxEvents != 10 || l.MaxPending != DefaultMaxPending {
		t.Errorf("limits %+v", l)
	}
	for _, tc := range []struct{ in, want string }{
		{`"0s"`, "0s"}, {`0`, "0s"}, {`"90s"`, "1m30s"}, {`2.5`, "2.5s"},
	} {
		c, err := ParseConfig([]byte(`{"agent_token_file":"/a","operator_token_file":"/o","approvals":{"timeout":` + tc.in + `}}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := c.Approvals.timeout().String(); got != tc.want {
			t.Errorf("timeout %s: %s, want %s", tc.in, got, tc.want)
		}
	}
	b, _ := json.Marshal(Config{Approvals: Policy{Timeout: dur(0)}})
	if !strings.Contains(string(b), `"timeout":"0s"`) {
		t.Errorf("a 0 timeout must be written, or it would read back as the default: %s", b)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"agent_token_file":"/a","operator_token_file":"/o","typo":1}`, "unknown field"},
		{`{"operator_token_file":"/o"}`, "agent_token_file is required"},
		{`{"agent_token_file":"/a"}`, "operator_token_file is required"},
		{`{"agent_token_file":"/t","operator_token_file":"/t"}`, "must differ"},
		{`{"agent_token_file":"/a","operator_token_file":"/o","approvals":{"kinds":["email"]}}`, "not one of"},
		{`{"agent_token_file":"/a","operator_token_file":"/o","approvals":{"timeout":"soon"}}`, "invalid duration"},
		{`{"agent_token_file":"/a","operator_token_file":"/o","approvals":{"timeout":"-1s"}}`, "negative"},
		{`{"agent_token_file":"/a","operator_token_file":"/o","listen":"8419"}`, "host:port"},
		{`{"agent_token_file":"/a","operator_token_file":"/o","limits":{"max_pending":-1}}`, "negative"},
		{`{"agent_token_file":"/a","operator_token_file":"/o"} {}`, "trailing"},
		{`[]`, "decoding"},
	} {
		if _, err := ParseConfig([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	writeFile(t, path("a"), "same\n")
	writeFile(t, path("o"), "same")
	writeFile(t, path("empty"), "\n")
	writeFile(t, path("x"), "other")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AgentTokenFile: path("a"), OperatorTokenFile: path("o")}, "the same"},
		{Config{AgentTokenFile: path("empty"), OperatorTokenFile: path("o")}, "empty"},
		{Config{AgentTokenFile: path("missing"), OperatorTokenFile: path("o")}, "agent token"},
		{Config{AgentTokenFile: path("x"), OperatorTokenFile: path("o"), AuditFile: path("nodir/audit")}, "audit"},
		{Config{}, "required"},
	} {
		s, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if s != nil {
			s.Close()
		}
	}
}

func TestFeedWraps(t *testing.T) {
	f := newFeed[uint64](4)
	items, last, _ := f.since(0)
	if len(items) != 0 || last != 0 {
		t.Fatalf("empty: %v %d", items, last)
	}
	for range 10 {
		f.add(func(seq uint64) uint64 { return seq })
	}
	for _, tc := range []struct {
		after uint64
		want  []uint64
	}{
		{0, []uint64{7, 8, 9, 10}}, {6, []uint64{7, 8, 9, 10}}, {8, []uint64{9, 10}}, {10, nil}, {99, nil},
	} {
		items, last, _ := f.since(tc.after)
		if fmt.Sprint(items) != fmt.Sprint(tc.want) {
			t.Errorf("after %d: %v, want %v", tc.after, items, tc.want)
		}
		if len(tc.want) > 0 && last != 10 {
			t.Errorf("after %d: last %d", tc.after, last)
		}
	}
	_, _, wake := f.since(10)
	f.add(func(seq uint64) uint64 { return seq })
	select {
	case <-wake:
	default:
		t.Fatal("add did not wake the followers")
	}
}

// TestAFloodCannotPushWhatMattersOutOfTheStreams: the merged audit and the
// events keep the start of the run and what was let through however many
// refusals follow, and say where lines were dropped.
func TestAFloodCannotPushWhatMattersOutOfTheStreams(t *testing.T) {
	f := start(t, func(c *Config) {
		c.Limits.MaxEvents = 64
		c.Limits.MaxAudit = 64
	})
	src := f.s.AuditSource("proxy")
	refuse := func(i int) {
		src([]byte(fmt.Sprintf(`{"time":"t","daemon":"proxy","host":"h%d.example","decision":"deny","status":407}`, i)))
		f.s.Emit(api.Event{Source: "proxy", Type: "egress.deny", Message: fmt.Sprintf("h%d.example:80", i)})
	}
	for i := range 20 {
		refuse(i)
	}
	src([]byte(`{"time":"t","daemon":"proxy","host":"exfil.example","decision":"allow","status":200}`))
	src([]byte(`{"time":"t","daemon":"gate","event":"push","decision":"allow"}`))
	f.s.Emit(api.Event{Source: "gate", Type: "git.push.allow", Message: "refs/heads/bottle/x/work"})
	// The agent's own events are never kept apart: it could flood them.
	f.s.Emit(api.Event{Source: api.SourceAgent, Type: "git.push.allow", Message: "forged"})
	const flood = 10000
	for i := range flood {
		refuse(1000 + i)
	}

	var es []api.AuditEntry
	f.get(t, api.PathAudit, f.operator, &es)
	text := func(e api.AuditEntry) string { return string(e.Record) }
	var all []string
	dropped := 0
	for _, e := range es {
		all = append(all, text(e))
		var m map[string]any
		json.Unmarshal(e.Record, &m)
		if m["event"] == audit.EventDropped {
			dropped += int(m["dropped_lines"].(float64))
		}
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{`"host":"h0.example"`, `"host":"exfil.example"`, `"event":"push"`, fmt.Sprintf(`"host":"h%d.example"`, 1000+flood-1)} {
		if !strings.Contains(joined, want) {
			t.Errorf("the merged audit lost %s", want)
		}
	}
	if kept := len(es) - strings.Count(joined, audit.EventDropped); kept+dropped != 20+2+flood {
		t.Errorf("%d lines kept and %d said dropped, of %d", kept, dropped, 20+2+flood)
	}

	var evs []api.Event
	f.get(t, api.PathEvents, f.operator, &evs)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+" "+e.Message)
	}
	joined = strings.Join(got, "\n")
	if !strings.Contains(joined, "git.push.allow refs/heads/bottle/x/work") || !strings.Contains(joined, "egress.deny h0.example") ||
		!strings.Contains(joined, EventDropped) {
		t.Errorf("the events lost what matters:\n%s", joined[:min(len(joined), 2000)])
	}
	if strings.Contains(joined, "forged") {
		t.Error("the agent's event was kept apart")
	}
}
