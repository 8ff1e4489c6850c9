package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/dashboard"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// statsReader is what reading a bottle's containers' stats needs of the
// engine.
type statsReader interface {
	ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerStats(ctx context.Context, id string, o client.ContainerStatsOptions) (client.ContainerStatsResult, error)
}

// bottleSample reads what a bottle uses on the engine: its agent container
// and its bundle, summed (the bottle's whole cost), from the engine's
// stats of each running one, found by their labels. With previous, the
// engine takes a second sample a second later and prev is the first: the
// CPU is then known from one call, as ls needs; without, the call returns
// at the engine's next collection and the dashboard keeps its own
// previous sample. A bottle without an agent container (smolvm: its agent
// is a machine) has ok false, and its usage is shown as unknown.
func bottleSample(ctx context.Context, eng statsReader, p plan.Plan, previous bool) (now, prev dashboard.Sample, ok bool) {
	if p.Backend != spec.BackendDocker {
		return now, prev, false
	}
	cs, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", plan.LabelBottle+"="+p.Slug)})
	if err != nil {
		return now, prev, false
	}
	var running []string
	for _, c := range cs.Items {
		ok = ok || c.Labels[plan.LabelRole] == plan.RoleAgent
		if c.State == container.StateRunning {
			running = append(running, c.ID)
		}
	}
	if !ok {
		return now, prev, false
	}
	// All at once: with previous, each takes the engine a second.
	sts := make([]container.StatsResponse, len(running))
	errs := make([]error, len(running))
	var wg sync.WaitGroup
	for i, id := range running {
		wg.Go(func() { sts[i], errs[i] = containerStats(ctx, eng, id, previous) })
	}
	wg.Wait()
	if errors.Join(errs...) != nil {
		return now, prev, false
	}
	for _, st := range sts {
		if st.Read.After(now.At) {
			now.At = st.Read
		}
		if st.PreRead.After(prev.At) {
			prev.At = st.PreRead
		}
		now.CPU += st.CPUStats.CPUUsage.TotalUsage
		prev.CPU += st.PreCPUStats.CPUUsage.TotalUsage
		now.Memory += memoryInUse(st.MemoryStats)
	}
	if now.At.IsZero() {
		// Nothing of the bottle runs: it uses nothing.
		now.At = time.Now()
	}
	return now, prev, true
}

// containerStats reads one sample (two with previous) of a container's
// stats.
func containerStats(ctx context.Context, eng statsReader, id string, previous bool) (container.StatsResponse, error) {
	var st container.StatsResponse
	res, err := eng.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: previous})
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	err = json.NewDecoder(res.Body).Decode(&st)
	return st, err
}

// memoryInUse is a container's memory without the inactive page cache,
// as `docker stats` counts it (cgroup v1 and v2 name it differently).
func memoryInUse(m container.MemoryStats) uint64 {
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[k]; ok && v < m.Usage {
			return m.Usage - v
		}
	}
	return m.Usage
}
