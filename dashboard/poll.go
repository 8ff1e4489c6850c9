package dashboard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Request says what one poll reads beyond every bottle's facts and held
// requests: the events (and, for the bottle in Detail, the audit and
// health) after the cursors the State keeps.
type Request struct {
	Cursors map[string]Cursor
	// Detail is the bottle whose audit and health are read too ("" for
	// none): the others' are not shown.
	Detail string
}

// Cursor is how far a bottle's feed was read: the last sequence numbers
// seen.
type Cursor struct {
	Events, Audit uint64
}

// Result is one bottle as one poll found it.
type Result struct {
	Name  string
	Facts Facts
	// Err says why the bottle could not be read at all (its facts are
	// then unknown).
	Err error
	// SupErr says why its supervisor was not asked or did not answer;
	// nil when it answered.
	SupErr error
	Held   []Held
	Events []Line
	Audit  []Line
	// Health is the daemons' trouble ("" when all run), read for the
	// bottle in the Request's Detail only.
	Health string
}

// Snapshot is what one poll found.
type Snapshot struct {
	At      time.Time
	Bottles []Result
	// Err says why the bottles could not be listed.
	Err error
}

// PollOptions bound a poll.
type PollOptions struct {
	// Timeout is how long one bottle may take to answer.
	Timeout time.Duration
	// Parallel is how many bottles are read at once.
	Parallel int
}

// feedLen is how many events and audit lines the dashboard keeps of a
// bottle: its supervisor may hold many more than a screen shows.
const feedLen = 200

// last is the end of ls, at most n long.
func last(ls []Line, n int) []Line {
	if len(ls) > n {
		return ls[len(ls)-n:]
	}
	return ls
}

// Poll reads every bottle of src, at most o.Parallel at once, each within
// o.Timeout: a bottle (or its supervisor) that does not answer in time is
// reported as such and holds up nothing else.
func Poll(ctx context.Context, src Source, req Request, o PollOptions) Snapshot {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	lctx, cancel := context.WithTimeout(ctx, o.Timeout)
	names, err := bounded(lctx, func(ctx context.Context) ([]string, error) { return src.List(ctx) })
	cancel()
	if err != nil {
		return Snapshot{At: time.Now(), Err: fmt.Errorf("listing the bottles: %w", err)}
	}
	res := make([]Result, len(names))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				res[i] = Result{Name: name, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			bctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			res[i] = readBottle(bctx, src, name, req)
		}()
	}
	wg.Wait()
	return Snapshot{At: time.Now(), Bottles: res}
}

// errNoAnswer is a bottle's (or its supervisor's) silence past the
// timeout.
var errNoAnswer = errors.New("did not answer in time")

// bounded runs f and returns by ctx's end even when f does not heed ctx:
// f then finishes in the background and its result is dropped.
func bounded[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	type out struct {
		v   T
		err error
	}
	ch := make(chan out, 1)
	go func() {
		v, err := f(ctx)
		ch <- out{v, err}
	}()
	select {
	case o := <-ch:
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, errNoAnswer
	}
}

// readBottle reads one bottle by ctx's end: its facts, then, when its
// bundle serves, what its supervisor holds and the events since the
// cursor. A supervisor that does not answer in time leaves the facts
// read.
func readBottle(ctx context.Context, src Source, name string, req Request) Result {
	f, err := bounded(ctx, func(ctx context.Context) (Facts, error) { return src.Inspect(ctx, name) })
	if err != nil {
		return Result{Name: name, Err: err}
	}
	if !f.Serving {
		return Result{Name: name, Facts: f}
	}
	r, err := bounded(ctx, func(ctx context.Context) (Result, error) { return askSupervisor(ctx, src, name, req), nil })
	if err != nil {
		r = Result{SupErr: err}
	}
	r.Name, r.Facts = name, f
	return r
}

// askSupervisor reads what a bottle's supervisor holds, its events after
// the cursor and, for the bottle in detail, its audit and health.
func askSupervisor(ctx context.Context, src Source, name string, req Request) Result {
	var r Result
	sup, err := src.Supervisor(ctx, name)
	if err != nil {
		r.SupErr = err
		return r
	}
	if r.Held, err = sup.Held(ctx); err != nil {
		r.SupErr = err
		return r
	}
	for i := range r.Held {
		r.Held[i].Bottle = name
	}
	cur := req.Cursors[name]
	if r.Events, err = sup.Events(ctx, cur.Events); err != nil {
		r.SupErr = err
		return r
	}
	r.Events = last(r.Events, feedLen)
	if name != req.Detail {
		return r
	}
	if r.Audit, err = sup.Audit(ctx, cur.Audit); err != nil {
		r.SupErr = err
		return r
	}
	r.Audit = last(r.Audit, feedLen)
	if r.Health, err = sup.Health(ctx); err != nil {
		r.SupErr = err
	}
	return r
}
