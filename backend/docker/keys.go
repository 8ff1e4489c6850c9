package docker

import (
	"io"
	"sync"

	"github.com/muesli/cancelreader"
)

// keys is the user's terminal as an attach reads it. docker/cli copies the
// user's keys to the agent in a goroutine that it leaves reading when the
// attach ends with the agent; in a process that goes on after the attach
// (the dashboard), that read would take the next key meant for it. stop
// cancels the read, so none outlives the attach. Closing keys leaves the
// terminal open: it is the user's.
type keys struct {
	r cancelreader.CancelReader

	mu                        sync.Mutex
	reading, stopped, cleared bool
}

// newKeys reads f until stop. When f is not a file, the read it is in
// cannot be cancelled, only the next.
func newKeys(f io.Reader) (*keys, error) {
	r, err := cancelreader.NewReader(f)
	if err != nil {
		return nil, err
	}
	return &keys{r: r}, nil
}

func (k *keys) Read(p []byte) (int, error) {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return 0, io.EOF
	}
	k.reading = true
	k.mu.Unlock()
	n, err := k.r.Read(p)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reading = false
	if k.stopped {
		k.clear()
		if err != nil {
			err = io.EOF
		}
	}
	return n, err
}

// Close does nothing: the terminal stays open.
func (k *keys) Close() error { return nil }

// stop ends the read in progress, if any, and every later one.
func (k *keys) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	k.r.Cancel()
	if !k.reading {
		k.clear()
	}
}

// clear releases what the cancellable read holds, once no read uses it
// (k.mu held).
func (k *keys) clear() {
	if !k.cleared {
		k.cleared = true
		_ = k.r.Close() // its own epoll and pipe: nothing of the user's
	}
}
