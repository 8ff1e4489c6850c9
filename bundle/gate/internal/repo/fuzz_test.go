package repo

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

// fuzzLimits are small, so that the bounds are reached.
var fuzzLimits = IndexLimits{MaxPackBytes: 1 << 20, MaxObjectBytes: 256 << 10, MaxLiveBytes: 512 << 10,
	MaxObjects: 1000, MaxInflatedBytes: 8 << 20}

// FuzzIndexPack indexes arbitrary packs (the input less its trailer, which
// is added, so that the fuzzer gets past the checksum) against an empty
// repository: no panic, allocations within what the limits allow, and
// every object of an accepted pack reads back with its name.
func FuzzIndexPack(f *testing.F) {
	strip := func(p []byte) []byte { return p[:len(p)-20] }
	f.Add(strip(gatetest.DeltaBomb(4 << 20)))
	f.Add(strip(gatetest.TinyEntries(3)))
	f.Add(strip(gatetest.DeepChain(5, 300)))
	f.Add(strip(gatetest.DeltaComb(5, 300)))
	p := gatetest.NewPack()
	b := p.Whole(gatetest.Blob, []byte("hello, world\n"))
	p.OfsDelta(b, gatetest.Delta(13, 6, gatetest.Copy(7, 5), gatetest.Insert([]byte("\n"))))
	p.RefDelta(gatetest.Hash(gatetest.Blob, []byte("hello, world\n")), gatetest.Delta(13, 1, gatetest.Insert([]byte("x"))))
	p.Whole(gatetest.Tree, []byte("100644 a\x00"+string(make([]byte, 20))))
	f.Add(strip(p.Bytes()))
	f.Add([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00"))

	dir := f.TempDir()
	for _, d := range []string{"objects/pack", "refs/heads"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > int(fuzzLimits.MaxPackBytes) {
			return
		}
		sum := sha1.Sum(data)
		pack := append(append([]byte(nil), data...), sum[:]...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ix, err := r.IndexPack(bytes.NewReader(pack), Thin{Store: r.Store()}, fuzzLimits)
		runtime.ReadMemStats(&after)
		// Garbage included: the inflated bytes in all, the entries, buffers.
		bound := uint64(fuzzLimits.MaxInflatedBytes + fuzzLimits.MaxObjects*EntryBytes*2 + 4<<20)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
			t.Errorf("indexing a pack of %d bytes allocated %d bytes, more than %d", len(pack), grew, bound)
		}
		if err != nil {
			return
		}
		defer ix.Discard()
		st := r.Store().With(ix)
		for h, typ := range ix.Types {
			got, content, err := st.Read(h)
			if err != nil || got != typ || nameOf(t, got, content) != h {
				t.Fatalf("%s (a %s) reads back as a %s named %s: %v", h, typ, got, nameOf(t, got, content), err)
			}
		}
		if binary.BigEndian.Uint32(pack[8:12]) != uint32(len(ix.Types)) {
			t.Fatalf("the pack declares %d objects; %d were indexed", binary.BigEndian.Uint32(pack[8:12]), len(ix.Types))
		}
	})
}

// FuzzApplyDelta applies arbitrary deltas to arbitrary bases: no panic,
// and a result is exactly as long as the delta declares and never longer
// than the bound.
func FuzzApplyDelta(f *testing.F) {
	f.Add([]byte("hello world"), []byte{11, 5, 0x90, 5})
	f.Add([]byte("hello world"), gatetest.Delta(11, 12, gatetest.Copy(0, 11), gatetest.Insert([]byte("!"))))
	f.Add(make([]byte, 1<<16), gatetest.Delta(1<<16, 1<<20, gatetest.Copy(0, 1<<16)))
	f.Add([]byte("x"), []byte{1, 0x80, 0x80, 0x80, 0x80, 0x01, 0x90, 1})
	const bound = 1 << 20
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		out, err := applyDelta(base, delta, bound)
		if err != nil {
			return
		}
		_, dst, _, _ := deltaHeader(delta)
		if uint64(len(out)) != dst || len(out) > bound {
			t.Fatalf("a result of %d bytes; the delta declares %d, the bound is %d", len(out), dst, bound)
		}
	})
}
