package dashboard

import (
	"fmt"
	"time"
)

// Usage is what a bottle's containers use. What is not known (the smolvm
// backend, or the CPU before a second sample) says so.
type Usage struct {
	// CPU is in percent of one core, as `docker stats` says it.
	CPU      float64
	CPUKnown bool
	// Memory is in bytes, without the page cache the kernel may reclaim.
	Memory      uint64
	MemoryKnown bool
}

// Sample is a bottle's cumulative CPU time and its memory at one time,
// summed over its containers.
type Sample struct {
	At time.Time
	// CPU is the CPU time used so far, in nanoseconds.
	CPU    uint64
	Memory uint64
}

// UsageBetween is the usage from sample prev to sample now: the CPU they
// used in between over the time between, the memory now.
func UsageBetween(prev, now Sample) Usage {
	u := Usage{Memory: now.Memory, MemoryKnown: true}
	if wall := now.At.Sub(prev.At); !prev.At.IsZero() && wall > 0 && now.CPU >= prev.CPU {
		u.CPU, u.CPUKnown = 100*float64(now.CPU-prev.CPU)/float64(wall), true
	}
	return u
}

// CPUText is the CPU as a column shows it: "12.3%", "-" when not known.
func (u Usage) CPUText() string {
	if !u.CPUKnown {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", u.CPU)
}

// MemoryText is the memory as a column shows it, in binary units:
// "512K", "12.3M", "1.2G"; "-" when not known.
func (u Usage) MemoryText() string {
	if !u.MemoryKnown {
		return "-"
	}
	v := float64(u.Memory)
	for _, unit := range []string{"B", "K", "M", "G"} {
		if v < 1000 {
			if unit == "B" {
				return fmt.Sprintf("%.0f%s", v, unit)
			}
			return fmt.Sprintf("%.1f%s", v, unit)
		}
		v /= 1024
	}
	return fmt.Sprintf("%.1fT", v)
}
