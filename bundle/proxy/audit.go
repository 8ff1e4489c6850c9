package proxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// record is one audit line: one per decision (a tunnel, a forwarded request,
// a refusal). Decision is "allow", "deny" (the rules, the guard, the token or
// the limits refused it) or "error" (allowed, but the upstream failed).
// Headers are never recorded, and the path is recorded without its query,
// which may carry credentials.
type record struct {
	Time       string  `json:"time"`
	Daemon     string  `json:"daemon"`
	Bottle     string  `json:"bottle,omitempty"`
	Client     string  `json:"client"`
	Method     string  `json:"method,omitempty"`
	Host       string  `json:"host,omitempty"`
	Port       int     `json:"port,omitempty"`
	Path       string  `json:"path,omitempty"`
	Rule       string  `json:"rule,omitempty"`
	Decision   string  `json:"decision"`
	Reason     string  `json:"reason,omitempty"`
	Status     int     `json:"status"`
	BytesUp    int64   `json:"bytes_up"`
	BytesDown  int64   `json:"bytes_down"`
	DurationMS float64 `json:"duration_ms"`
	// Repeated, on a line that sums up refusals, is how many it stands for.
	Repeated int `json:"repeated,omitempty"`

	start time.Time
}

func (p *Proxy) newRecord(cc *clientConn, start time.Time) *record {
	return &record{
		Time:   start.UTC().Format(time.RFC3339Nano),
		Daemon: "proxy",
		Bottle: p.cfg.Bottle,
		Client: cc.client,
		start:  start,
	}
}

// finish stamps the duration and writes the line.
func (p *Proxy) finish(rec *record) {
	rec.DurationMS = float64(time.Since(rec.start).Microseconds()) / 1000
	p.writeAudit(rec)
}

// writeAudit writes rec, or counts it when it repeats a refusal of the last
// second (see refusals).
func (p *Proxy) writeAudit(rec *record) {
	if rec.Decision != "allow" && !p.refusals.first(rec, p.flushRefusals) {
		return
	}
	p.write(rec)
}

func (p *Proxy) write(rec *record) {
	if err := p.audit.Write(rec); err != nil {
		p.log.Error("egress proxy: writing the audit line failed", "err", err)
	}
}

// Refusals cost the agent nothing to make: written one by one, a flood of
// them would rotate the record of what it did out of the audit file. So
// within a window of refusalWindow the first refusal of each kind is
// written, the ones like it are only counted, and when the window ends one
// line sums them up. Beyond maxRefusalKinds kinds in a window, refusals are
// only counted, and summed up in one line. Allowed connections and requests
// are always written one by one.
const (
	refusalWindow   = time.Second
	maxRefusalKinds = 64
)

// refusals counts the refusals of the current window.
type refusals struct {
	mu     sync.Mutex
	open   bool
	kinds  map[refusalKey]*refusalKind
	others int
	timer  *time.Timer
	closed bool
}

// refusalKey is what makes two refusals alike: everything but the time,
// the client's port and the byte counts.
type refusalKey struct {
	client, method, host, path, rule, decision, reason string
	port, status                                       int
}

type refusalKind struct {
	first record
	n     int
}

// first reports whether rec is to be written now; if not, it is counted and
// flush will sum it up when the window ends.
func (r *refusals) first(rec *record, flush func()) bool {
	client, _, err := net.SplitHostPort(rec.Client)
	if err != nil {
		client = rec.Client
	}
	k := refusalKey{client, rec.Method, rec.Host, rec.Path, rec.Rule, rec.Decision, rec.Reason, rec.Port, rec.Status}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return true
	}
	if !r.open {
		r.open, r.kinds = true, map[refusalKey]*refusalKind{}
		r.timer = time.AfterFunc(refusalWindow, flush)
	}
	if kind, ok := r.kinds[k]; ok {
		kind.n++
		return false
	}
	if len(r.kinds) >= maxRefusalKinds {
		r.others++
		return false
	}
	r.kinds[k] = &refusalKind{first: *rec}
	return true
}

// take ends the window and returns its sums; with stop, no window opens
// again and later refusals are written one by one.
func (r *refusals) take(stop bool) (kinds map[refusalKey]*refusalKind, others int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
	kinds, others = r.kinds, r.others
	r.open, r.kinds, r.others, r.timer = false, nil, 0, nil
	r.closed = r.closed || stop
	return kinds, others
}

// flushRefusals writes the sums of the window that ended.
func (p *Proxy) flushRefusals() { p.writeRefusalSums(p.refusals.take(false)) }

func (p *Proxy) writeRefusalSums(kinds map[refusalKey]*refusalKind, others int) {
	now := time.Now()
	stamp := now.UTC().Format(time.RFC3339Nano)
	for _, k := range kinds {
		if k.n == 0 {
			continue
		}
		sum := k.first
		sum.Time, sum.start = stamp, now
		sum.BytesUp, sum.BytesDown, sum.DurationMS = 0, 0, 0
		sum.Repeated = k.n
		sum.Reason = fmt.Sprintf("%s (%d more like this in the last second)", sum.Reason, k.n)
		p.write(&sum)
	}
	if others > 0 {
		p.write(&record{Time: stamp, Daemon: "proxy", Bottle: p.cfg.Bottle, Decision: "deny", Repeated: others,
			Reason: fmt.Sprintf("%d more refusals in the last second, of more than %d kinds, were only counted", others, maxRefusalKinds)})
	}
}
