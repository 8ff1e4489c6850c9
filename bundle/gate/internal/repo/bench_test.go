package repo

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

// BenchmarkIndexPack indexes a push of 2,000 blobs of 8 KiB and 2,000
// deltas against them (32 MiB of objects to hash): the gate's share of
// a push, where every object the agent sends is hashed.
func BenchmarkIndexPack(b *testing.B) {
	dir := b.TempDir()
	bare := filepath.Join(dir, "bare.git")
	git(b, dir, nil, "init", "-q", "--bare", bare)
	r, err := Open(bare)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	p := gatetest.NewPack()
	const n, size = 2000, 8 << 10
	for i := 0; i < n; i++ {
		blob := make([]byte, size)
		for j := range blob {
			blob[j] = 'a' + byte(rng.IntN(16)) // compresses like text
		}
		base := p.Whole(gatetest.Blob, blob)
		p.OfsDelta(base, gatetest.Delta(size, size+4, gatetest.Copy(0, size), gatetest.Insert([]byte("edit"))))
	}
	pack := p.Bytes()
	lim := IndexLimits{MaxPackBytes: 1 << 30, MaxObjectBytes: 1 << 20, MaxLiveBytes: 256 << 20, MaxObjects: 10 * n, MaxInflatedBytes: 1 << 30}
	b.SetBytes(2*n*size + 4*n)
	b.ResetTimer()
	for range b.N {
		ix, err := r.IndexPack(bytes.NewReader(pack), Thin{}, lim)
		if err != nil {
			b.Fatal(err)
		}
		if err := ix.Discard(); err != nil {
			b.Fatal(err)
		}
	}
}
