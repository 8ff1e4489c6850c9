package dashboard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// with changes f's bottles while no poll reads them.
func (f *fakeSource) with(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func names(bs []Bottle) []string {
	var ns []string
	for _, b := range bs {
		ns = append(ns, b.Name)
	}
	return ns
}

func TestStatesFollowTheBottles(t *testing.T) {
	starting := running("a-starting")
	starting.facts.AgentCreated, starting.facts.Agent = false, "missing"
	exited := running("b-exited")
	exited.facts.Agent, exited.facts.ExitCode, exited.facts.Serving = "exited", 3, false
	failed := running("c-failed")
	failed.facts.Failed, failed.facts.Serving = "the bundle process ended (exit code 2) and was restarted 3 times", false
	startingHolds := running("a-starting-holds").hold("r0", "example.com:443", time.Second)
	startingHolds.facts.AgentCreated, startingHolds.facts.Agent = false, "missing"
	gone := running("d-gone")
	gone.facts.Agent = "missing"
	f := newFake(starting, startingHolds, exited, failed, gone,
		running("e-working").event("hook.PostToolUse", "Bash(ls)"),
		running("f-idle").event("hook.PostToolUse", "Bash(ls)").event("hook.Stop", ""),
		running("g-asks").event("hook.Notification", "Claude needs your permission"),
		running("h-holds").hold("r1", "example.com:443", time.Second),
		running("i-quiet"))
	s := NewState()
	poll(s, f, "")
	want := map[string]string{
		"a-starting": "starting", "a-starting-holds": "waiting for you", "b-exited": "exited (3)", "c-failed": "failed", "d-gone": "failed",
		"e-working": "working", "f-idle": "idle", "g-asks": "waiting for you", "h-holds": "waiting for you",
		"i-quiet": "working",
	}
	for _, b := range s.Bottles() {
		if got := b.State(); got != want[b.Name] {
			t.Errorf("%s: state %q, want %q", b.Name, got, want[b.Name])
		}
	}
	if b, _ := s.Bottle("c-failed"); !strings.Contains(b.Why(), "restarted 3 times") {
		t.Errorf("a failed bottle says why %q, want the bundle's reason", b.Why())
	}
	if b, _ := s.Bottle("d-gone"); b.Why() != "the agent is missing" {
		t.Errorf("a bottle whose agent is gone says why %q", b.Why())
	}

	// The agent goes on after its turn: a new prompt makes it work again,
	// and it stops for good.
	f.with(func() { f.bottles["f-idle"].event("hook.UserPromptSubmit", "go on") })
	f.with(func() {
		f.bottles["e-working"].facts.Agent = "exited"
		f.bottles["e-working"].facts.ExitCode = 0
	})
	poll(s, f, "")
	if b, _ := s.Bottle("f-idle"); b.State() != "working" {
		t.Errorf("after a new prompt: %q, want working", b.State())
	}
	if b, _ := s.Bottle("e-working"); b.State() != "exited (0)" {
		t.Errorf("after its end: %q, want exited (0)", b.State())
	}

	// A removed bottle leaves the dashboard.
	f.with(func() { delete(f.bottles, "i-quiet") })
	poll(s, f, "")
	if _, ok := s.Bottle("i-quiet"); ok {
		t.Error("a removed bottle is still shown")
	}
}

func TestWaitingBottlesSortFirstAndAreAnnounced(t *testing.T) {
	f := newFake(running("a"), running("b").hold("old", "old.example:443", time.Minute), running("c"),
		running("d").event("hook.Notification", "needs you"))
	s := NewState()
	if started := poll(s, f, ""); started != nil {
		t.Errorf("the first poll announces %v: the user sees those as the screen opens", started)
	}
	if got, want := names(s.Bottles()), []string{"b", "d", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want waiting ones first: %v", got, want)
	}
	if s.WaitingCount() != 2 {
		t.Errorf("%d waiting, want 2", s.WaitingCount())
	}

	f.with(func() { f.bottles["c"].hold("new", "new.example:443", 0) })
	if started := poll(s, f, ""); !slices.Equal(started, []string{"c"}) {
		t.Errorf("started waiting: %v, want [c]", started)
	}
	// b has waited longest (since the first poll), then d, then c.
	if got, want := names(s.Bottles()), []string{"b", "d", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if started := poll(s, f, ""); started != nil {
		t.Errorf("a bottle still waiting is announced again: %v", started)
	}
}

func TestQueueHoldsEveryBottlesRequestsOldestFirst(t *testing.T) {
	f := newFake(running("a").hold("a1", "new.example:443", time.Second),
		running("b").hold("b1", "old.example:443", time.Minute).hold("b2", "mid.example:443", 30*time.Second))
	s := NewState()
	poll(s, f, "")
	var got []string
	for _, h := range s.Queue() {
		got = append(got, h.Bottle+"/"+h.ID)
	}
	if want := []string{"b/b1", "b/b2", "a/a1"}; !slices.Equal(got, want) {
		t.Errorf("queue %v, want %v", got, want)
	}
	// A request decided here leaves the queue at once, and stays away
	// while its supervisor still lists it.
	s.Decided("b1")
	poll(s, f, "")
	if q := s.Queue(); len(q) != 2 || q[0].ID != "b2" {
		t.Errorf("queue after deciding b1: %+v", q)
	}
}

func TestSilentSupervisorDoesNotHoldUpTheRest(t *testing.T) {
	silent := running("silent").hold("s1", "x.example:443", time.Second)
	stuck := running("stuck")
	stuck.hangInspect = true
	refused := running("refused")
	refused.supErr = errors.New("the bundle publishes its supervisor on another port")
	f := newFake(running("fine").hold("f1", "y.example:443", time.Second), silent, stuck, refused)
	s := NewState()
	start := time.Now()
	poll(s, f, "")
	f.with(func() { silent.hang, silent.facts.LastLine = true, "still here" })
	poll(s, f, "")
	// Two polls of 200ms timeouts, bottles read in parallel.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("two polls took %s: a silent bottle held them up", d)
	}
	for name, want := range map[string]string{"silent": "did not answer", "stuck": "did not answer", "refused": "another port", "fine": ""} {
		b, ok := s.Bottle(name)
		if !ok {
			t.Fatalf("bottle %s is not shown", name)
		}
		if want == "" && b.Trouble != "" || !strings.Contains(b.Trouble, want) {
			t.Errorf("%s: trouble %q, want %q", name, b.Trouble, want)
		}
	}
	// What the silent one held while it answered is still shown: its
	// bundle still serves.
	if b, _ := s.Bottle("silent"); len(b.Held) != 1 {
		t.Errorf("the silent bottle's held requests: %+v", b.Held)
	}
	// What the engine says of it is read all the same.
	if b, _ := s.Bottle("silent"); b.LastLine != "still here" {
		t.Errorf("a silent supervisor hid the bottle's facts: last line %q", b.LastLine)
	}
}

func TestPollBoundsHowManyBottlesAreReadAtOnce(t *testing.T) {
	f := newFake()
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		f.bottles[n] = running(n)
	}
	c := &countingSource{fakeSource: f}
	Poll(context.Background(), c, Request{}, PollOptions{Timeout: time.Second, Parallel: 2})
	if c.max != 2 {
		t.Errorf("%d bottles read at once, want 2", c.max)
	}
}

// countingSource counts the Inspect calls in flight.
type countingSource struct {
	*fakeSource
	now, max int
}

func (c *countingSource) Inspect(ctx context.Context, name string) (Facts, error) {
	c.fakeSource.with(func() { c.now++; c.max = max(c.max, c.now) })
	time.Sleep(20 * time.Millisecond)
	c.fakeSource.with(func() { c.now-- })
	return c.fakeSource.Inspect(ctx, name)
}

func TestFeedReadsOnlyWhatIsNew(t *testing.T) {
	b := running("a")
	for i := 0; i < feedLen+50; i++ {
		b.event("hook.PostToolUse", "Bash(ls)")
	}
	b.audit = []Line{{Seq: 1, Source: "proxy", Type: "allow", Text: "CONNECT example.com:443"}}
	f := newFake(b)
	s := NewState()
	poll(s, f, "")
	got, _ := s.Bottle("a")
	if len(got.Events) != feedLen || got.Events[0].Seq != 51 {
		t.Fatalf("kept %d events from %d, want the newest %d", len(got.Events), got.Events[0].Seq, feedLen)
	}
	if len(got.Audit) != 0 {
		t.Errorf("the audit was read for a bottle not in detail")
	}
	f.with(func() { b.event("hook.Stop", "") })
	poll(s, f, "a")
	got, _ = s.Bottle("a")
	if n := len(got.Events); n != feedLen || got.Events[n-1].Type != "hook.Stop" || got.Events[n-2].Seq != uint64(feedLen+50) {
		t.Errorf("after a new event the feed ends %+v", got.Events[n-2:])
	}
	if len(got.Audit) != 1 {
		t.Errorf("the audit of the bottle in detail: %+v", got.Audit)
	}
	poll(s, f, "a")
	if got, _ = s.Bottle("a"); len(got.Audit) != 1 || len(got.Events) != feedLen {
		t.Errorf("a second read repeats lines: %d audit, %d events", len(got.Audit), len(got.Events))
	}
}

func TestListFailureKeepsWhatWasShown(t *testing.T) {
	f := newFake(running("a"))
	s := NewState()
	poll(s, f, "")
	f.with(func() { f.listErr = errors.New("permission denied") })
	poll(s, f, "")
	if !strings.Contains(s.ListErr, "permission denied") || len(s.Bottles()) != 1 {
		t.Errorf("list error %q, %d bottles shown", s.ListErr, len(s.Bottles()))
	}
}
