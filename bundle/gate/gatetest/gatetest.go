// Package gatetest builds the hand-made pushes a hostile agent can send the
// git gate (packs no git would write: delta bombs, millions of tiny
// entries, deep delta chains, thin packs whose bases the bottle was never
// given), for the gate's tests and for end-to-end tests of the bundle.
package gatetest

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Object types as packs number them.
const (
	Commit   = 1
	Tree     = 2
	Blob     = 3
	Tag      = 4
	OfsDelta = 6
	RefDelta = 7
)

var typeNames = map[int]string{Commit: "commit", Tree: "tree", Blob: "blob", Tag: "tag"}

// Hash is the object name git gives data of type typ, in hex.
func Hash(typ int, data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", typeNames[typ], len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// Pack builds a pack entry by entry.
type Pack struct {
	buf  bytes.Buffer
	n    uint32
	offs []int
	zw   *zlib.Writer
}

// NewPack starts an empty pack.
func NewPack() *Pack {
	p := &Pack{}
	p.buf.Write(make([]byte, 12)) // the header, written by Bytes
	return p
}

func (p *Pack) header(typ int, size int) {
	p.offs = append(p.offs, p.buf.Len())
	p.n++
	c := byte(typ)<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		p.buf.WriteByte(c | 0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	p.buf.WriteByte(c)
}

func (p *Pack) deflate(data []byte) {
	if p.zw == nil {
		p.zw, _ = zlib.NewWriterLevel(&p.buf, zlib.BestCompression)
	} else {
		p.zw.Reset(&p.buf)
	}
	p.zw.Write(data)
	p.zw.Close()
}

// Whole adds a whole object and returns its entry number.
func (p *Pack) Whole(typ int, data []byte) int {
	p.header(typ, len(data))
	p.deflate(data)
	return int(p.n) - 1
}

// OfsDelta adds a delta against entry base of this pack.
func (p *Pack) OfsDelta(base int, delta []byte) int {
	p.header(OfsDelta, len(delta))
	rel := uint64(p.offs[len(p.offs)-1] - p.offs[base])
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(rel & 0x7f)
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		i--
		tmp[i] = 0x80 | byte(rel&0x7f)
	}
	p.buf.Write(tmp[i:])
	p.deflate(delta)
	return int(p.n) - 1
}

// RefDelta adds a delta against the object named base (hex), which the
// pack need not hold: a thin pack.
func (p *Pack) RefDelta(base string, delta []byte) int {
	p.header(RefDelta, len(delta))
	h, err := hex.DecodeString(base)
	if err != nil || len(h) != 20 {
		panic("gatetest: bad object name " + base)
	}
	p.buf.Write(h)
	p.deflate(delta)
	return int(p.n) - 1
}

// Bytes returns the pack: header, entries and checksum.
func (p *Pack) Bytes() []byte {
	b := p.buf.Bytes()
	copy(b, "PACK")
	binary.BigEndian.PutUint32(b[4:], 2)
	binary.BigEndian.PutUint32(b[8:], p.n)
	sum := sha1.Sum(b)
	return append(b, sum[:]...)
}

// Delta encodes a git delta from a base of src bytes to a result of dst
// bytes; ops are Copy and Insert instructions.
func Delta(src, dst int64, ops ...[]byte) []byte {
	b := binary.AppendUvarint(nil, uint64(src))
	b = binary.AppendUvarint(b, uint64(dst))
	for _, op := range ops {
		b = append(b, op...)
	}
	return b
}

// Copy is the delta instruction copying size bytes (at most 16 MiB) of the
// base from off.
func Copy(off, size uint32) []byte {
	op := byte(0x80)
	var args []byte
	for i := 0; i < 4; i++ {
		if v := byte(off >> (8 * i)); v != 0 {
			op |= 1 << i
			args = append(args, v)
		}
	}
	for i := 0; i < 3; i++ {
		if v := byte(size >> (8 * i)); v != 0 {
			op |= 0x10 << i
			args = append(args, v)
		}
	}
	return append([]byte{op}, args...)
}

// Insert is the delta instruction inserting data (at most 127 bytes).
func Insert(data []byte) []byte { return append([]byte{byte(len(data))}, data...) }

// DeltaBomb is the review's H1 attack: a blob of 1 MiB of zeros (about a
// kilobyte compressed) and a delta against it that declares a result of
// size bytes (a multiple of 1 MiB), made of copies of the whole blob: two
// bytes of delta per MiB of result.
func DeltaBomb(size int64) []byte {
	const mib = 1 << 20
	p := NewPack()
	base := p.Whole(Blob, make([]byte, mib))
	ops := make([][]byte, size/mib)
	for i := range ops {
		ops[i] = Copy(0, mib)
	}
	p.OfsDelta(base, Delta(mib, size, ops...))
	return p.Bytes()
}

// TinyEntries is the review's other H1 attack: n entries of an empty blob,
// nine bytes each.
func TinyEntries(n int) []byte {
	var b bytes.Buffer
	b.Grow(12 + 9*n + 20)
	b.WriteString("PACK\x00\x00\x00\x02")
	binary.Write(&b, binary.BigEndian, uint32(n))
	entry := []byte{0x30, 0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}
	for i := 0; i < n; i++ {
		b.Write(entry)
	}
	sum := sha1.Sum(b.Bytes())
	return append(b.Bytes(), sum[:]...)
}

// DeepChain is a blob of size bytes and a chain of depth deltas on it,
// each copying its base and adding a byte: every link is a different
// object of about size bytes.
func DeepChain(depth int, size uint32) []byte {
	p := NewPack()
	data := bytes.Repeat([]byte("deep chain\n"), int(size)/11+1)[:size]
	prev := p.Whole(Blob, data)
	n := size
	for i := 0; i < depth; i++ {
		prev = p.OfsDelta(prev, Delta(int64(n), int64(n+1), append(copyAll(n), Insert([]byte{byte(i)}))...))
		n++
	}
	return p.Bytes()
}

// copyAll is the delta instructions that copy a whole base of n bytes.
func copyAll(n uint32) [][]byte {
	var ops [][]byte
	for off := uint32(0); off < n; off += 1 << 16 {
		ops = append(ops, Copy(off, min(1<<16, n-off)))
	}
	return ops
}

// DeltaComb is DeepChain with a second delta on every link, written after
// the one the chain goes on with: resolving depth first, every link of the
// chain is held until its second delta is applied.
func DeltaComb(depth int, size uint32) []byte {
	p := NewPack()
	data := bytes.Repeat([]byte("delta comb\n"), int(size)/11+1)[:size]
	prev := p.Whole(Blob, data)
	n := size
	for i := 0; i < depth; i++ {
		next := p.OfsDelta(prev, Delta(int64(n), int64(n+1), append(copyAll(n), Insert([]byte{byte(i)}))...))
		p.OfsDelta(prev, Delta(int64(n), 2, Insert([]byte{'t', byte(i)})))
		prev = next
		n++
	}
	return p.Bytes()
}

// Leak is the review's M4 push: a commit on parent whose tree names entry
// as leak.txt, plus, when base is set, a delta on base (of baseSize bytes)
// that copies it whole and adds "x", as a thin pack's delta would. With
// entry or base an object the bottle was never given, a gate that let it
// through would serve that object, or one made from it, to a fetch.
func Leak(parent, entry, base string, baseSize int) (commit string, pack []byte) {
	p := NewPack()
	raw, err := hex.DecodeString(entry)
	if err != nil || len(raw) != 20 {
		panic("gatetest: bad object name " + entry)
	}
	tree := "100644 leak.txt\x00" + string(raw)
	p.Whole(Tree, []byte(tree))
	c := fmt.Sprintf("tree %s\nparent %s\nauthor A <a@example.test> 1700000000 +0000\ncommitter A <a@example.test> 1700000000 +0000\n\nleak\n",
		Hash(Tree, []byte(tree)), parent)
	p.Whole(Commit, []byte(c))
	if base != "" {
		p.RefDelta(base, Delta(int64(baseSize), int64(baseSize+1), Copy(0, uint32(baseSize)), Insert([]byte("x"))))
	}
	return Hash(Commit, []byte(c)), p.Bytes()
}

// Command is one ref update of a push.
type Command struct {
	Old, New, Ref string
}

// ZeroID is the object name of "no object".
var ZeroID = strings.Repeat("0", 40)

// ReceivePackBody is the body of a git-receive-pack request: the commands
// (the first with report-status) and the pack.
func ReceivePackBody(cmds []Command, pack []byte) []byte {
	var b bytes.Buffer
	for i, c := range cmds {
		line := c.Old + " " + c.New + " " + c.Ref
		if i == 0 {
			line += "\x00report-status side-band-64k agent=gatetest"
		}
		line += "\n"
		fmt.Fprintf(&b, "%04x%s", len(line)+4, line)
	}
	b.WriteString("0000")
	b.Write(pack)
	return b.Bytes()
}

// Push posts body to the gate at base (http://host:port/repo.git) with
// the bottle's token and returns the status and the report, side-band
// framing removed.
func Push(c *http.Client, base, token string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/git-receive-pack", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth("bottle", token)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, unband(raw), nil
}

// unband removes pkt-line and side-band framing where it finds it, so the
// report reads as text.
func unband(b []byte) string {
	var out strings.Builder
	for len(b) >= 4 {
		n, err := strconv.ParseUint(string(b[:4]), 16, 16)
		if err != nil || (n != 0 && n < 4) || int(n) > len(b) {
			break
		}
		if n == 0 {
			b = b[4:]
			continue
		}
		p := b[4:n]
		b = b[n:]
		switch {
		case len(p) > 0 && p[0] == 1:
			out.WriteString(unband(p[1:])) // the report, in pkt-lines
			continue
		case len(p) > 0 && (p[0] == 2 || p[0] == 3):
			out.Write(p[1:]) // progress and errors, as text
			continue
		}
		out.Write(p)
	}
	out.Write(b)
	return out.String()
}
