package gate_test

import (
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

// peakHeap runs f and returns how far the heap grew above where it
// started while f ran, sampled every millisecond.
func peakHeap(f func()) uint64 {
	old := debug.SetGCPercent(20) // keep garbage from counting as use
	defer debug.SetGCPercent(old)
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// The review's H1 attacks, pushed at a gate with the bundle's default
// memory: none may make the gate hold more than a fraction of it, and the
// gate takes a normal push afterwards.
func TestHostilePacksStayWithinMemory(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := os.ReadFile(e.tokenFile)
	must(t, err)
	token := strings.TrimSpace(string(tok))
	head := e.git(e.user, "rev-parse", "HEAD")
	client := &http.Client{Timeout: 2 * time.Minute}

	const bound = 64 << 20 // an eighth of the bundle's 512 MiB
	bomb := gatetest.DeltaBomb(512 << 20)
	tiny := gatetest.TinyEntries(1_500_000)
	chain := gatetest.DeepChain(300, 1<<20)
	comb := gatetest.DeltaComb(300, 1<<20)
	t.Logf("delta bomb %d bytes, tiny entries %d bytes, deep chain %d bytes, delta comb %d bytes", len(bomb), len(tiny), len(chain), len(comb))
	for _, c := range []struct {
		name, ref string
		pack      []byte
		refused   bool
	}{
		{"delta bomb to a forbidden ref", "refs/heads/main", bomb, true},
		{"delta bomb to an allowed ref", "refs/heads/bottle/b1/bomb", bomb, true},
		{"tiny entries to a forbidden ref", "refs/heads/main", tiny, true},
		{"tiny entries to an allowed ref", "refs/heads/bottle/b1/tiny", tiny, true},
		{"fewer tiny entries to an allowed ref", "refs/heads/bottle/b1/tiny", gatetest.TinyEntries(130_000), true},
		// 300 objects of 1 MiB, each a delta of the one before: a valid
		// pack, but only one link of the chain may be held at a time.
		{"deep chain to an allowed ref", "refs/heads/bottle/b1/chain", chain, false},
		// The same, but every link also has a delta resolved after the
		// chain's next one, so the links are held.
		{"delta comb to an allowed ref", "refs/heads/bottle/b1/comb", comb, true},
	} {
		old := gatetest.ZeroID
		if c.ref == "refs/heads/main" {
			old = e.stageRef("refs/heads/main")
		}
		body := gatetest.ReceivePackBody([]gatetest.Command{{Old: old, New: head, Ref: c.ref}}, c.pack)
		var status int
		var report string
		var perr error
		grew := peakHeap(func() { status, report, perr = gatetest.Push(client, e.url, token, body) })
		t.Logf("%s: heap grew by %d MiB; %d %q", c.name, grew>>20, status, report)
		if perr != nil {
			t.Errorf("%s: %v", c.name, perr)
			continue
		}
		if status != http.StatusOK || (c.refused && !strings.Contains(report, "ng "+c.ref)) {
			t.Errorf("%s: %d %q, want the update refused", c.name, status, report)
		}
		if grew > bound {
			t.Errorf("%s: the heap grew by %d MiB, more than %d MiB", c.name, grew>>20, bound>>20)
		}
	}
	c := e.clone("work")
	ok := e.commitFile(c, "after.txt", "after the attacks\n", "normal work")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/after")
	if got := e.stageRef("refs/heads/bottle/b1/after"); got != ok {
		t.Errorf("normal push after the attacks: %q, want %s", got, ok)
	}
}

// The bounds follow the memory the gate is given: an object of 10 MiB is
// too large for a bundle of 128 MiB and fine for one of 512 MiB.
func TestPushLimitsFollowMemory(t *testing.T) {
	p := gatetest.NewPack()
	p.Whole(gatetest.Blob, make([]byte, 10<<20))
	pack := p.Bytes()
	for _, c := range []struct {
		mem  int64
		want string
	}{{128 << 20, "objects of at most 8 MiB"}, {512 << 20, "ok refs/heads/bottle/b1/big"}} {
		e := newEnv(t, nil, gate.WithMemoryLimit(c.mem))
		tok, err := os.ReadFile(e.tokenFile)
		must(t, err)
		body := gatetest.ReceivePackBody([]gatetest.Command{{Old: gatetest.ZeroID, New: e.stageRef("HEAD"), Ref: "refs/heads/bottle/b1/big"}}, pack)
		_, report, err := gatetest.Push(&http.Client{Timeout: time.Minute}, e.url, strings.TrimSpace(string(tok)), body)
		if err != nil || !strings.Contains(report, c.want) {
			t.Errorf("memory %d MiB: %q %v, want %q", c.mem>>20, report, err, c.want)
		}
	}
}
