package dashboard

import (
	"testing"
	"time"
)

func TestUsageBetween(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	s := func(at time.Duration, cpu time.Duration, mem uint64) Sample {
		return Sample{At: t0.Add(at), CPU: uint64(cpu), Memory: mem}
	}
	for _, c := range []struct {
		name      string
		prev, now Sample
		cpu, mem  string
	}{
		{"half a core", s(0, time.Second, 0), s(2*time.Second, 2*time.Second, 12<<20+300<<10), "50.0%", "12.3M"},
		{"two cores", s(0, 0, 0), s(time.Second, 2*time.Second, 512<<10), "200.0%", "512.0K"},
		{"first sample", Sample{}, s(time.Second, time.Second, 900), "-", "900B"},
		{"restarted container", s(0, 5*time.Second, 0), s(time.Second, time.Second, 3<<30), "-", "3.0G"},
		{"same time", s(time.Second, 0, 0), s(time.Second, time.Second, 0), "-", "0B"},
	} {
		u := UsageBetween(c.prev, c.now)
		if u.CPUText() != c.cpu || u.MemoryText() != c.mem {
			t.Errorf("%s: %s %s, want %s %s", c.name, u.CPUText(), u.MemoryText(), c.cpu, c.mem)
		}
	}
	if (Usage{}).CPUText() != "-" || (Usage{}).MemoryText() != "-" {
		t.Error("an unknown usage is not shown as -")
	}
}
