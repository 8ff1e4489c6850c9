package dashboard

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is what a bottle is doing, as its user cares.
type Kind int

// The kinds, in the order a user looks at them.
const (
	Starting Kind = iota
	Working
	// Waiting: the bottle holds a request for a decision, or the agent
	// said it needs its user.
	Waiting
	Idle
	Exited
	Failed
)

// Agent hook events that say what the agent does (provider/settings.go
// names the hooks; the hook helper prefixes "hook.").
const (
	eventNeedsInput = "hook.Notification"
	eventTurnEnded  = "hook.Stop"
	eventSessionEnd = "hook.SessionEnd"
)

// Bottle is one bottle as the dashboard shows it.
type Bottle struct {
	Facts
	Kind Kind
	// Since is when the dashboard saw it enter its Kind (the dashboard's
	// start for what it found).
	Since time.Time
	Held  []Held
	// Trouble says why the bottle or its supervisor could not be read at
	// the last poll; "" when it could.
	Trouble string
	// Health is the bundle's trouble as its supervisor says ("" when all
	// its daemons run); read for the bottle shown in detail only.
	Health string
	// Events and Audit are the newest of the bottle's feed, oldest first.
	Events, Audit []Line
	// lastAgent is the type of the agent's last hook event.
	lastAgent string
}

// State says what a bottle does in words: "waiting for you", "exited
// (2)".
func (b Bottle) State() string {
	switch b.Kind {
	case Starting:
		return "starting"
	case Working:
		return "working"
	case Waiting:
		return "waiting for you"
	case Idle:
		return "idle"
	case Exited:
		if b.ExitCode >= 0 {
			return fmt.Sprintf("exited (%d)", b.ExitCode)
		}
		return "exited"
	}
	return "failed"
}

// Why says why a failed bottle failed; "" for the others.
func (b Bottle) Why() string {
	switch {
	case b.Kind != Failed:
		return ""
	case b.Failed != "":
		return b.Failed
	case b.Agent == "":
		return "the agent's state is not known"
	}
	return "the agent is " + b.Agent
}

// State is every bottle of the state dir as the polls found them, with
// no terminal in it: the program shows it, tests drive it.
type State struct {
	bottles map[string]*Bottle
	// ListErr says why the last poll could not list the bottles.
	ListErr string
	// At is when the last poll was done.
	At time.Time
	// decided hides the requests decided here until their supervisor
	// stops listing them.
	decided map[string]bool
	applied bool
}

// NewState returns a State that has seen no poll.
func NewState() *State {
	return &State{bottles: map[string]*Bottle{}, decided: map[string]bool{}}
}

// Request is what the next poll should read, with the bottle named in
// detail read in full.
func (s *State) Request(detail string) Request {
	req := Request{Cursors: map[string]Cursor{}, Detail: detail}
	for name, b := range s.bottles {
		var c Cursor
		if n := len(b.Events); n > 0 {
			c.Events = b.Events[n-1].Seq
		}
		if n := len(b.Audit); n > 0 {
			c.Audit = b.Audit[n-1].Seq
		}
		req.Cursors[name] = c
	}
	return req
}

// Apply takes in a poll's findings and returns the bottles that started
// waiting for their user since the poll before (none on the first: the
// user sees those on the screen as it opens).
func (s *State) Apply(snap Snapshot) (startedWaiting []string) {
	s.At = snap.At
	if snap.Err != nil {
		s.ListErr = snap.Err.Error()
		return nil
	}
	s.ListErr = ""
	seen := map[string]bool{}
	held := map[string]bool{}
	for _, r := range snap.Bottles {
		seen[r.Name] = true
		b, known := s.bottles[r.Name]
		if !known {
			b = &Bottle{Facts: Facts{Name: r.Name, ExitCode: -1}, Kind: Starting, Since: snap.At}
			s.bottles[r.Name] = b
		}
		was := b.Kind
		s.update(b, r)
		for _, h := range b.Held {
			held[h.ID] = true
		}
		if b.Kind != was || !known {
			b.Since = snap.At
		}
		if s.applied && b.Kind == Waiting && (was != Waiting || !known) {
			startedWaiting = append(startedWaiting, r.Name)
		}
	}
	for name := range s.bottles {
		if !seen[name] {
			delete(s.bottles, name)
		}
	}
	for id := range s.decided {
		if !held[id] {
			delete(s.decided, id)
		}
	}
	s.applied = true
	slices.Sort(startedWaiting)
	return startedWaiting
}

// update takes one bottle's findings in. What could not be read keeps its
// last known value, marked with the trouble.
func (s *State) update(b *Bottle, r Result) {
	if r.Err != nil {
		b.Trouble = r.Err.Error()
		return
	}
	b.Facts = r.Facts
	b.Trouble = ""
	switch {
	case r.SupErr != nil:
		b.Trouble = "supervisor: " + r.SupErr.Error()
		if !r.Facts.Serving {
			// The bundle is down: nothing it held can be decided now.
			b.Held = nil
		}
	default:
		b.Held = r.Held
		b.Health = r.Health
		b.Events = appendFeed(b.Events, r.Events)
		b.Audit = appendFeed(b.Audit, r.Audit)
		for _, e := range r.Events {
			if strings.HasPrefix(e.Type, "hook.") && e.Source == "agent" {
				b.lastAgent = e.Type
			}
		}
	}
	b.Kind = kindOf(b)
}

// appendFeed adds the new lines of a feed, keeping its newest feedLen.
func appendFeed(feed, add []Line) []Line {
	if len(add) == 0 {
		return feed
	}
	return slices.Clone(last(append(feed, add...), feedLen))
}

// kindOf says what b is doing from its facts, what it holds and its
// agent's last hook event.
func kindOf(b *Bottle) Kind {
	switch {
	case b.Failed != "":
		return Failed
	case len(b.Held) > 0:
		// Whatever the agent does, a held request needs the user.
		return Waiting
	case !b.AgentCreated || b.Agent == "created":
		return Starting
	case b.Agent == "running":
		switch b.lastAgent {
		case eventNeedsInput:
			return Waiting
		case eventTurnEnded, eventSessionEnd:
			return Idle
		}
		return Working
	case b.Agent == "exited" || b.Agent == "stopped" || b.Agent == "dead":
		return Exited
	}
	return Failed
}

// Bottles lists the bottles, waiting ones first (the longest waiting
// first), the others by name.
func (s *State) Bottles() []Bottle {
	bs := make([]Bottle, 0, len(s.bottles))
	for _, b := range s.bottles {
		bs = append(bs, s.shown(*b))
	}
	slices.SortFunc(bs, func(a, b Bottle) int {
		aw, bw := a.Kind == Waiting, b.Kind == Waiting
		switch {
		case aw && !bw:
			return -1
		case bw && !aw:
			return 1
		case aw && bw:
			if c := waitingSince(a).Compare(waitingSince(b)); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Name, b.Name)
	})
	return bs
}

// waitingSince is when b started waiting: when its oldest request was
// held, or when the dashboard saw the agent ask for its user.
func waitingSince(b Bottle) time.Time {
	t := b.Since
	for _, h := range b.Held {
		if h.Since.Before(t) {
			t = h.Since
		}
	}
	return t
}

// Bottle returns the bottle called name.
func (s *State) Bottle(name string) (Bottle, bool) {
	b, ok := s.bottles[name]
	if !ok {
		return Bottle{}, false
	}
	return s.shown(*b), true
}

// shown is b without the requests decided here.
func (s *State) shown(b Bottle) Bottle {
	b.Held = slices.DeleteFunc(slices.Clone(b.Held), func(h Held) bool { return s.decided[h.ID] })
	return b
}

// Queue is every held request of every bottle, oldest first, as
// `approvals -i` shows them.
func (s *State) Queue() []Held {
	var q []Held
	for _, b := range s.bottles {
		q = append(q, s.shown(*b).Held...)
	}
	slices.SortFunc(q, func(a, b Held) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return q
}

// Decided hides a request that was just decided (or found settled): its
// supervisor stops listing it at once, but the next poll may be a while.
func (s *State) Decided(id string) { s.decided[id] = true }

// WaitingCount is how many bottles wait for their user.
func (s *State) WaitingCount() int {
	n := 0
	for _, b := range s.bottles {
		if b.Kind == Waiting {
			n++
		}
	}
	return n
}
