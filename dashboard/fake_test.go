package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// fakeSource is a state dir of bottles held in memory.
type fakeSource struct {
	mu      sync.Mutex
	bottles map[string]*fakeBottle
	// listErr fails List.
	listErr error
	// calls records Decide, Stop, Start and Remove, in order.
	calls []string
	// settled makes Decide find a request settled meanwhile.
	settled bool
}

type fakeBottle struct {
	facts  Facts
	held   []Held
	events []Line
	audit  []Line
	health string
	// hang makes its supervisor (or, with hangInspect, Inspect) never
	// answer, whatever the context says.
	hang, hangInspect bool
	supErr            error
}

// hangForever stands for a call that never returns; it is never closed.
var hangForever = make(chan struct{})

func newFake(bs ...*fakeBottle) *fakeSource {
	f := &fakeSource{bottles: map[string]*fakeBottle{}}
	for _, b := range bs {
		f.bottles[b.facts.Name] = b
	}
	return f
}

// running is a bottle whose agent and bundle run.
func running(name string) *fakeBottle {
	return &fakeBottle{facts: Facts{Name: name, Repo: "/src/" + name, Branch: "bottle/" + name, Backend: "docker",
		Created: time.Now().Add(-time.Hour), AgentCreated: true, Agent: "running", ExitCode: -1, Serving: true}}
}

func (f *fakeSource) bottle(name string) *fakeBottle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bottles[name]
}

func (f *fakeSource) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var names []string
	for n := range f.bottles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakeSource) Inspect(_ context.Context, name string) (Facts, error) {
	b := f.bottle(name)
	if b == nil {
		return Facts{}, fmt.Errorf("no bottle %s", name)
	}
	if b.hangInspect {
		<-hangForever
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return b.facts, nil
}

func (f *fakeSource) Supervisor(_ context.Context, name string) (Supervisor, error) {
	b := f.bottle(name)
	if b.supErr != nil {
		return nil, b.supErr
	}
	return fakeSup{f, b}, nil
}

func (f *fakeSource) Decide(_ context.Context, name, id string, d approval.Decision) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("decide %s %s %s", name, id, d))
	if f.settled {
		return "Too late", nil
	}
	b := f.bottles[name]
	i := slices.IndexFunc(b.held, func(h Held) bool { return h.ID == id })
	if i < 0 {
		return "", errors.New("no such request")
	}
	b.held = slices.Delete(b.held, i, i+1)
	return "Decided " + string(d), nil
}

func (f *fakeSource) act(verb, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, verb+" "+name)
	return nil
}

func (f *fakeSource) Stop(_ context.Context, name string) error   { return f.act("stop", name) }
func (f *fakeSource) Start(_ context.Context, name string) error  { return f.act("start", name) }
func (f *fakeSource) Remove(_ context.Context, name string) error { return f.act("remove", name) }

func (f *fakeSource) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type fakeSup struct {
	f *fakeSource
	b *fakeBottle
}

func (s fakeSup) wait() {
	if s.b.hang {
		<-hangForever
	}
}

func (s fakeSup) Held(context.Context) ([]Held, error) {
	s.wait()
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return slices.Clone(s.b.held), nil
}

func after(ls []Line, seq uint64) []Line {
	var out []Line
	for _, l := range ls {
		if l.Seq > seq {
			out = append(out, l)
		}
	}
	return out
}

func (s fakeSup) Events(_ context.Context, seq uint64) ([]Line, error) {
	s.wait()
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return after(s.b.events, seq), nil
}

func (s fakeSup) Audit(_ context.Context, seq uint64) ([]Line, error) {
	s.wait()
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return after(s.b.audit, seq), nil
}

func (s fakeSup) Health(context.Context) (string, error) {
	s.wait()
	return s.b.health, nil
}

// hold makes b hold a request.
func (b *fakeBottle) hold(id, subject string, age time.Duration) *fakeBottle {
	now := time.Now()
	b.held = append(b.held, Held{ID: id, Kind: approval.Egress, Subject: subject,
		Since: now.Add(-age), Deadline: now.Add(5*time.Minute - age)})
	return b
}

// event adds an agent hook event to b's feed.
func (b *fakeBottle) event(typ, text string) *fakeBottle {
	b.events = append(b.events, Line{Seq: uint64(len(b.events) + 1), Time: time.Now(), Source: "agent", Type: typ, Text: text})
	return b
}

// poll is one poll of f into s, as the program does it.
func poll(s *State, f *fakeSource, detail string) []string {
	return s.Apply(Poll(context.Background(), f, s.Request(detail), PollOptions{Timeout: 200 * time.Millisecond, Parallel: 4}))
}
