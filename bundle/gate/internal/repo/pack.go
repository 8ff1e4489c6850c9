package repo

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// pack is one packfile with its version 2 index, loaded into memory (the
// index is about 28 bytes per object; the pack data is read with pread so
// that memory does not grow with the repository's size).
type pack struct {
	name string // path of the .pack file
	f    *os.File
	size int64
	idx  []byte
	n    int
	// checksum is the pack's trailing SHA-1 as recorded in the index.
	checksum Hash

	namesOff, crcOff, offOff, largeOff int

	revOnce sync.Once
	revErr  error
	// rev lists index positions sorted by pack offset; revOff holds those
	// offsets. Together they give each entry's end (the next entry's start)
	// and map an offset back to its object name.
	rev    []uint32
	revOff []uint64
}

var idxMagic = []byte{0xff, 't', 'O', 'c'}

func openPack(idxPath string) (*pack, error) {
	idx, err := os.ReadFile(idxPath)
	if err != nil {
		return nil, err
	}
	p, err := parseIdx(idx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", idxPath, err)
	}
	p.name = strings.TrimSuffix(idxPath, ".idx") + ".pack"
	f, err := os.Open(p.name)
	if err != nil {
		return nil, err
	}
	// The pack is only read: closing it on a failure loses nothing.
	fail := func(err error) (*pack, error) {
		f.Close() //nolint:errcheck // read-only, see above
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	p.f, p.size = f, st.Size()
	var hdr [12]byte
	var trailer Hash
	if p.size < 32 {
		return fail(fmt.Errorf("%w: %s is too short", ErrCorrupt, p.name))
	}
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fail(err)
	}
	if _, err := f.ReadAt(trailer[:], p.size-20); err != nil {
		return fail(err)
	}
	ver := binary.BigEndian.Uint32(hdr[4:])
	if string(hdr[:4]) != "PACK" || (ver != 2 && ver != 3) || int(binary.BigEndian.Uint32(hdr[8:])) != p.n || trailer != p.checksum {
		return fail(fmt.Errorf("%w: %s does not match its index", ErrCorrupt, p.name))
	}
	return p, nil
}

func parseIdx(idx []byte) (*pack, error) {
	if len(idx) < 8+256*4+40 || !bytes.Equal(idx[:4], idxMagic) || binary.BigEndian.Uint32(idx[4:]) != 2 {
		return nil, fmt.Errorf("%w: not a version 2 pack index", ErrCorrupt)
	}
	p := &pack{idx: idx}
	prev := uint32(0)
	for i := 0; i < 256; i++ {
		v := binary.BigEndian.Uint32(idx[8+4*i:])
		if v < prev {
			return nil, fmt.Errorf("%w: pack index fan-out is not monotonic", ErrCorrupt)
		}
		prev = v
	}
	p.n = int(prev)
	p.namesOff = 8 + 256*4
	p.crcOff = p.namesOff + 20*p.n
	p.offOff = p.crcOff + 4*p.n
	p.largeOff = p.offOff + 4*p.n
	if p.largeOff+40 > len(idx) || (len(idx)-p.largeOff-40)%8 != 0 {
		return nil, fmt.Errorf("%w: pack index has the wrong size", ErrCorrupt)
	}
	copy(p.checksum[:], idx[len(idx)-40:])
	return p, nil
}

func (p *pack) close() { p.f.Close() } //nolint:errcheck // the pack is only read

func (p *pack) fanout(b byte) int {
	return int(binary.BigEndian.Uint32(p.idx[8+4*int(b):]))
}

func (p *pack) hashAt(pos int) Hash {
	var h Hash
	copy(h[:], p.idx[p.namesOff+20*pos:])
	return h
}

func (p *pack) crcAt(pos int) uint32 {
	return binary.BigEndian.Uint32(p.idx[p.crcOff+4*pos:])
}

func (p *pack) offsetAt(pos int) (uint64, error) {
	v := binary.BigEndian.Uint32(p.idx[p.offOff+4*pos:])
	if v&0x80000000 == 0 {
		return uint64(v), nil
	}
	i := p.largeOff + 8*int(v&0x7fffffff)
	if i+8 > len(p.idx)-40 {
		return 0, fmt.Errorf("%w: bad large offset in pack index", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(p.idx[i:]), nil
}

// find returns the index position of h.
func (p *pack) find(h Hash) (int, bool) {
	lo := 0
	if h[0] > 0 {
		lo = p.fanout(h[0] - 1)
	}
	hi := p.fanout(h[0])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := bytes.Compare(p.idx[p.namesOff+20*mid:p.namesOff+20*mid+20], h[:])
		switch {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false
}

func (p *pack) buildRev() error {
	p.revOnce.Do(func() {
		rev := make([]uint32, p.n)
		off := make([]uint64, p.n)
		for i := range rev {
			rev[i] = uint32(i)
			o, err := p.offsetAt(i)
			if err != nil {
				p.revErr = err
				return
			}
			off[i] = o
		}
		sort.Sort(revSorter{rev, off})
		for i := range off {
			if off[i] < 12 || off[i] >= uint64(p.size-20) || (i > 0 && off[i] == off[i-1]) { //nolint:gosec // G115: openPack checked size >= 32
				p.revErr = fmt.Errorf("%w: bad offset in pack index of %s", ErrCorrupt, p.name)
				return
			}
		}
		p.rev, p.revOff = rev, off
	})
	return p.revErr
}

type revSorter struct {
	pos []uint32
	off []uint64
}

func (s revSorter) Len() int           { return len(s.pos) }
func (s revSorter) Less(i, j int) bool { return s.off[i] < s.off[j] }
func (s revSorter) Swap(i, j int) {
	s.pos[i], s.pos[j] = s.pos[j], s.pos[i]
	s.off[i], s.off[j] = s.off[j], s.off[i]
}

// entryAt maps an offset to its rank in offset order; the entry ends where
// the next one starts (or at the trailer).
func (p *pack) entryAt(off uint64) (rank int, end uint64, ok bool) {
	if err := p.buildRev(); err != nil {
		return 0, 0, false
	}
	r := sort.Search(len(p.revOff), func(i int) bool { return p.revOff[i] >= off })
	if r == len(p.revOff) || p.revOff[r] != off {
		return 0, 0, false
	}
	if r+1 < len(p.revOff) {
		return r, p.revOff[r+1], true
	}
	return r, uint64(p.size - 20), true //nolint:gosec // G115: openPack checked size >= 32
}

// entry is one pack entry's header plus its raw bytes.
type entry struct {
	typ      Type
	size     int64 // inflated size (of the delta, for deltas)
	hdrLen   int
	baseOff  uint64 // absolute offset of the base, for OfsDelta
	baseHash Hash   // for RefDelta
	raw      []byte // header and compressed data, exactly the entry
}

// readEntry reads the whole entry at off (header and compressed data) with
// one pread, into buf when it is large enough.
func (p *pack) readEntry(off uint64, buf []byte) (entry, error) {
	var e entry
	_, end, ok := p.entryAt(off)
	if !ok {
		return e, fmt.Errorf("%w: no entry at offset %d of %s", ErrCorrupt, off, p.name)
	}
	n := int(end - off) //nolint:gosec // G115: buildRev checked off < end <= size-20
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	raw := buf[:n]
	if _, err := p.f.ReadAt(raw, int64(off)); err != nil { //nolint:gosec // G115: buildRev checked off < size
		return e, fmt.Errorf("reading %s: %w", p.name, err)
	}
	e.raw = raw
	if err := parseEntryHeader(&e, off); err != nil {
		return e, fmt.Errorf("%s at %d: %w", p.name, off, err)
	}
	return e, nil
}

func parseEntryHeader(e *entry, off uint64) error {
	raw := e.raw
	if len(raw) < 1 {
		return fmt.Errorf("%w: empty pack entry", ErrCorrupt)
	}
	c := raw[0]
	e.typ = Type((c >> 4) & 7)
	size := int64(c & 0x0f)
	shift := uint(4)
	i := 1
	for c&0x80 != 0 {
		if i >= len(raw) || shift > 56 {
			return fmt.Errorf("%w: bad entry size", ErrCorrupt)
		}
		c = raw[i]
		i++
		size |= int64(c&0x7f) << shift
		shift += 7
	}
	e.size = size
	switch e.typ {
	case Commit, Tree, Blob, Tag:
	case OfsDelta:
		if i >= len(raw) {
			return fmt.Errorf("%w: truncated delta offset", ErrCorrupt)
		}
		c = raw[i]
		i++
		rel := uint64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(raw) || rel > 1<<56 {
				return fmt.Errorf("%w: bad delta offset", ErrCorrupt)
			}
			c = raw[i]
			i++
			rel = (rel+1)<<7 | uint64(c&0x7f)
		}
		if rel == 0 || rel > off {
			return fmt.Errorf("%w: delta base offset out of range", ErrCorrupt)
		}
		e.baseOff = off - rel
	case RefDelta:
		if i+20 > len(raw) {
			return fmt.Errorf("%w: truncated delta base", ErrCorrupt)
		}
		copy(e.baseHash[:], raw[i:i+20])
		i += 20
	default:
		return fmt.Errorf("%w: unknown entry type %d", ErrCorrupt, e.typ)
	}
	e.hdrLen = i
	return nil
}

var zlibPool sync.Pool

// inflate decompresses exactly size bytes from comp.
func inflate(comp []byte, size int64) ([]byte, error) {
	br := bytes.NewReader(comp)
	var zr io.ReadCloser
	if v := zlibPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	defer zlibPool.Put(zr)
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%w: inflating: %v", ErrCorrupt, err)
	}
	return out, nil
}
