package supervisor

import (
	"cmp"
	"slices"
	"sync"
)

// feed is a bounded log with sequence numbers: the newest max items are
// kept, older ones dropped. Followers read by sequence number and wait on a
// channel that is closed at each append, so an emitter never blocks on a
// slow reader and memory stays bounded whatever the readers do.
//
// With retention, a flood cannot push out what matters: the first items
// (the start of the bundle's run) are kept for good, the items retention
// marks important (what was let through) have a ring of their own, and a
// reader is told where items were dropped, and how many.
type feed[T any] struct {
	mu     sync.Mutex
	recent ring[T]
	keep   retention[T]
	head   []T     // the first keep.head items
	kept   ring[T] // important items after the head
	next   uint64  // sequence number of the next item, from 1
	wake   chan struct{}
}

// retention says what a feed keeps besides its newest items.
type retention[T any] struct {
	head      int                       // the first items, kept for good
	important func(T) bool              // items kept in a ring of their own
	kept      int                       // the size of that ring
	seq       func(T) uint64            // an item's sequence number
	gap       func(n int, seq uint64) T // stands for n dropped items, the first numbered seq
}

func newFeed[T any](size int) *feed[T] {
	return &feed[T]{recent: ring[T]{max: size}, next: 1, wake: make(chan struct{})}
}

func newRetainingFeed[T any](size int, keep retention[T]) *feed[T] {
	f := newFeed[T](size)
	f.keep, f.kept = keep, ring[T]{max: keep.kept}
	return f
}

// add stores the item that mk makes for the next sequence number and wakes
// the followers. mk runs under the feed's lock, so sequence numbers and
// order agree.
func (f *feed[T]) add(mk func(seq uint64) T) T {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := mk(f.next)
	f.next++
	switch {
	case len(f.head) < f.keep.head:
		f.head = append(f.head, v)
	default:
		f.recent.add(v)
		if f.keep.important != nil && f.keep.important(v) {
			f.kept.add(v)
		}
	}
	close(f.wake)
	f.wake = make(chan struct{})
	return v
}

// since returns the kept items with a sequence number greater than after,
// oldest first, the sequence number of the last one (after when there is
// none), and a channel closed at the next append. With retention, where
// items were dropped between two returned ones (or after `after`), an item
// made by retention's gap stands for them.
func (f *feed[T]) since(after uint64) ([]T, uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := max(after, f.next-1)
	if f.next-1 <= after {
		return nil, last, f.wake
	}
	if f.keep.seq == nil {
		// One ring, numbered consecutively up to next-1.
		items := f.recent.items()
		oldest := f.next - uint64(len(items))
		if after+1 > oldest {
			items = items[after+1-oldest:]
		}
		return items, last, f.wake
	}
	seq := f.keep.seq
	var out []T
	for _, part := range [][]T{f.head, f.kept.items(), f.recent.items()} {
		for _, v := range part {
			if seq(v) > after {
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(seq(a), seq(b)) })
	out = slices.CompactFunc(out, func(a, b T) bool { return seq(a) == seq(b) })
	// Mark what was dropped: before the first item, and between items.
	marked := make([]T, 0, len(out)+2)
	prev := after
	for _, v := range out {
		if s := seq(v); s > prev+1 {
			marked = append(marked, f.keep.gap(int(s-prev-1), prev+1)) //nolint:gosec // G115: below s, a count of the items the feed took
		}
		marked = append(marked, v)
		prev = seq(v)
	}
	return marked, last, f.wake
}

// len is the number of items kept.
func (f *feed[T]) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.head) + len(f.recent.buf) + len(f.kept.buf)
}

// ring keeps the newest max items it was given.
type ring[T any] struct {
	max   int
	buf   []T // grows to max, then wraps
	start int // index of the oldest item once full
}

func (r *ring[T]) add(v T) {
	if r.max <= 0 {
		return
	}
	if len(r.buf) < r.max {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % r.max
}

// items returns the ring's items, oldest first, in a new slice.
func (r *ring[T]) items() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}
