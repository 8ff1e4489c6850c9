package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// DefaultMemoryLimit is the memory the gate assumes its process has when
// it is told nothing: the bundle container's default limit.
const DefaultMemoryLimit = 512 << 20

// WithMemoryLimit sets the memory limit of the process the gate runs in
// (the bundle container's), from which the bounds of a push are derived.
func WithMemoryLimit(bytes int64) Option {
	return func(g *Gate) {
		if bytes > 0 {
			g.memory = bytes
		}
	}
}

// pushLimits derives the bounds of one push from mem, the memory of the
// process, which the gate shares with the proxy, the supervisor and
// fetches. One push is indexed and checked at a time, and it holds at most
// about five sixteenths of mem: three objects of mem/16 while a delta is
// applied (its base, the delta, the result), mem/16 of bases kept for
// deltas still to come, and mem/16 for its entries. Inflating is bounded
// by 4*mem in all, which bounds its time.
func pushLimits(mem, maxPack int64) repo.IndexLimits {
	share := mem / 16
	return repo.IndexLimits{
		MaxPackBytes:     maxPack,
		MaxObjectBytes:   share,
		MaxLiveBytes:     share,
		MaxObjects:       share / repo.EntryBytes,
		MaxInflatedBytes: 4 * mem,
	}
}

// What a waiting push may do: pushes beyond MaxQueuedPushes, or waiting
// longer than pushQueueWait (another push may be waiting for a human),
// are refused and may be tried again.
const (
	MaxQueuedPushes = 8
	pushQueueWait   = 2 * time.Minute
)

var errBusy = errors.New("the git gate is busy with other pushes (it checks one at a time): try again in a minute")

// takePushSlot waits for the one push slot and returns its release.
func (g *Gate) takePushSlot(ctx context.Context) (func(), error) {
	if g.queued.Add(1) > MaxQueuedPushes {
		g.queued.Add(-1)
		return nil, errBusy
	}
	defer g.queued.Add(-1)
	t := time.NewTimer(pushQueueWait)
	defer t.Stop()
	select {
	case g.pushSlot <- struct{}{}:
		return func() { <-g.pushSlot }, nil
	case <-t.C:
		return nil, errBusy
	case <-ctx.Done():
		return nil, fmt.Errorf("the push ended while it waited for its turn: %w", ctx.Err())
	}
}

// limitsHint says what the limits of a refused pack are and what to do;
// packWhy names the limit on its size.
func (g *Gate) limitsHint(lim repo.IndexLimits, packWhy string) string {
	return fmt.Sprintf("this gate takes packs of at most %s (%s), objects of at most %s and %d objects per push, from the bundle's memory of %s: push fewer commits at a time, and keep large files out of git",
		size(lim.MaxPackBytes), packWhy, size(lim.MaxObjectBytes), lim.MaxObjects, size(g.memory))
}
