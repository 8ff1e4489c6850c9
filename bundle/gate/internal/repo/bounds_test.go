package repo

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

// headerOnly gives a pack's first bytes, then fails: a pack that may not be
// read past its header.
type headerOnly struct{ b []byte }

func (h *headerOnly) Read(p []byte) (int, error) {
	if len(h.b) == 0 {
		return 0, errors.New("read past the header")
	}
	n := copy(p, h.b)
	h.b = h.b[n:]
	return n, nil
}

// padded is a pack of one blob of one byte whose zlib stream carries n
// empty stored blocks first.
func padded(n int) []byte {
	var z bytes.Buffer
	z.Write([]byte{0x78, 0x01})
	for i := 0; i < n; i++ {
		z.Write([]byte{0x00, 0x00, 0x00, 0xff, 0xff})
	}
	z.Write([]byte{0x01, 0x01, 0x00, 0xfe, 0xff, 'x'})
	binary.Write(&z, binary.BigEndian, adler32.Checksum([]byte("x")))
	var b bytes.Buffer
	b.WriteString("PACK\x00\x00\x00\x02\x00\x00\x00\x01")
	b.WriteByte(0x31)
	b.Write(z.Bytes())
	sum := sha1.Sum(b.Bytes())
	return append(b.Bytes(), sum[:]...)
}

func TestIndexPackBounds(t *testing.T) {
	_, bare := history(t)
	r, err := Open(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lim := IndexLimits{MaxPackBytes: 64 << 20, MaxObjectBytes: 8 << 20, MaxLiveBytes: 8 << 20,
		MaxObjects: 1000, MaxInflatedBytes: 256 << 20}
	tiny := gatetest.TinyEntries(1001)
	deep := lim
	deep.MaxObjects = 10000
	for _, c := range []struct {
		name string
		src  io.Reader
		lim  IndexLimits
		want string // "" accepts
	}{
		{"delta bomb", bytes.NewReader(gatetest.DeltaBomb(64 << 20)), lim, "more than the limit of 8388608"},
		{"more entries than the limit, refused from the header", &headerOnly{tiny[:12]}, lim, "1001 objects"},
		{"a long chain holds one link at a time", bytes.NewReader(gatetest.DeepChain(100, 1<<20)), lim, ""},
		{"a comb holds its links", bytes.NewReader(gatetest.DeltaComb(100, 1<<20)), lim, "more than 8388608 bytes at once"},
		{"inflating is bounded in all", bytes.NewReader(gatetest.DeepChain(100, 1<<20)),
			IndexLimits{MaxPackBytes: 64 << 20, MaxObjectBytes: 8 << 20, MaxInflatedBytes: 50 << 20}, "inflate to more than"},
		{"a chain deeper than git writes", bytes.NewReader(gatetest.DeepChain(maxChain+1, 16)), deep, "delta chain longer than 4095"},
		{"the deepest chain git writes", bytes.NewReader(gatetest.DeepChain(maxChain, 16)), deep, ""},
		{"padding in a compressed object", bytes.NewReader(padded(1000)), lim, "takes 5012 bytes compressed"},
		{"a little padding is fine", bytes.NewReader(padded(10)), lim, ""},
	} {
		ix, err := r.IndexPack(c.src, Thin{Store: r.Store()}, c.lim)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
		ix.Discard()
	}
}
