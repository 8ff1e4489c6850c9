package supervisor

import "sync"

// feed is a bounded log with sequence numbers: the newest max items are
// kept, older ones dropped. Followers read by sequence number and wait on a
// channel that is closed at each append, so an emitter never blocks on a
// slow reader and memory stays bounded whatever the readers do.
type feed[T any] struct {
	mu   sync.Mutex
	max  int
	buf  []T    // ring; grows to max, then wraps
	head int    // index of the oldest item once the ring is full
	next uint64 // sequence number of the next item, from 1
	wake chan struct{}
}

func newFeed[T any](max int) *feed[T] {
	return &feed[T]{max: max, next: 1, wake: make(chan struct{})}
}

// add stores the item that mk makes for the next sequence number and wakes
// the followers. mk runs under the feed's lock, so sequence numbers and
// order agree.
func (f *feed[T]) add(mk func(seq uint64) T) T {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := mk(f.next)
	f.next++
	if len(f.buf) < f.max {
		f.buf = append(f.buf, v)
	} else {
		f.buf[f.head] = v
		f.head = (f.head + 1) % f.max
	}
	close(f.wake)
	f.wake = make(chan struct{})
	return v
}

// since returns the kept items with a sequence number greater than after,
// oldest first, the sequence number of the last one (after when there is
// none), and a channel closed at the next append.
func (f *feed[T]) since(after uint64) ([]T, uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := uint64(len(f.buf))
	oldest := f.next - n
	start := uint64(0)
	if after+1 > oldest {
		start = after + 1 - oldest
	}
	if start >= n {
		return nil, max(after, f.next-1), f.wake
	}
	out := make([]T, 0, n-start)
	for i := start; i < n; i++ {
		out = append(out, f.buf[(uint64(f.head)+i)%n])
	}
	return out, f.next - 1, f.wake
}

// len is the number of items kept.
func (f *feed[T]) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.buf)
}
