package proxy

import (
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

func (p *Proxy) writeAudit(rec *record) {
	if err := p.audit.Write(rec); err != nil {
		p.log.Error("egress proxy: writing the audit line failed", "err", err)
	}
}
