package repo

import (
	"bufio"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
)

// PackOptions says what the receiving side accepts.
type PackOptions struct {
	// OfsDelta lets deltas name their base by offset (capability ofs-delta).
	OfsDelta bool
	// Thin lets deltas use bases the receiver has but the pack lacks
	// (capability thin-pack); Has says which.
	Thin bool
	Has  func(Hash) bool
}

// PackStats counts what WritePack did.
type PackStats struct {
	Objects int
	// Reused entries were copied as stored; Deltas of them are deltas.
	Reused, Deltas int
	// Inflated entries had to be rebuilt whole (loose objects, deltas whose
	// base is not sent).
	Inflated int
	Bytes    int64
}

type packItem struct {
	Object
	p   *pack
	off uint64
	pos int
}

// WritePack writes a packfile holding objs to w. Objects are written in the
// order they are stored, and stored entries are copied without inflating:
// whole objects as they are, deltas as they are when their base is sent too
// (or, for a thin pack, when the receiver has it). Only the rest is
// inflated and compressed again. This is what makes serving a clone cost
// about as much as copying the pack.
func (s *Store) WritePack(w io.Writer, objs []Object, o PackOptions) (PackStats, error) {
	var st PackStats
	packIdx := map[*pack]int{}
	for i, p := range s.packs {
		packIdx[p] = i
	}
	items := make([]packItem, len(objs))
	chosen := make(map[Hash]*pack, len(objs))
	for i, obj := range objs {
		it := packItem{Object: obj}
		found := false
		for _, p := range s.packs {
			if pos, ok := p.find(obj.Hash); ok {
				off, err := p.offsetAt(pos)
				if err != nil {
					return st, err
				}
				it.p, it.off, it.pos, found = p, off, pos, true
				break
			}
		}
		if !found && !s.Has(obj.Hash) {
			return st, fmt.Errorf("%w: %s", ErrNotFound, obj.Hash)
		}
		items[i] = it
		chosen[obj.Hash] = it.p
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if (a.p == nil) != (b.p == nil) {
			return a.p != nil
		}
		if a.p != b.p {
			return packIdx[a.p] < packIdx[b.p]
		}
		return a.off < b.off
	})

	bw := bufio.NewWriterSize(w, 256<<10)
	sum := sha1.New()
	out := io.MultiWriter(bw, sum)
	cw := &countWriter{w: out}
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(items))) //nolint:gosec // G115: a repository's objects, far fewer than 1<<32
	if _, err := cw.Write(hdr[:]); err != nil {
		return st, err
	}
	written := make(map[cacheKey]uint64, len(items))
	var buf []byte
	var zw *zlib.Writer
	for _, it := range items {
		start := uint64(cw.n) //nolint:gosec // G115: a byte count, non-negative
		st.Objects++
		if it.p == nil {
			t, data, err := s.readLoose(it.Hash)
			if err != nil {
				return st, err
			}
			if err := writeWhole(cw, &zw, t, data); err != nil {
				return st, err
			}
			st.Inflated++
			continue
		}
		e, err := it.p.readEntry(it.off, buf)
		if err != nil {
			return st, err
		}
		if cap(e.raw) > cap(buf) {
			buf = e.raw[:0]
		}
		if crc32.ChecksumIEEE(e.raw) != it.p.crcAt(it.pos) {
			return st, fmt.Errorf("%w: checksum mismatch for %s in %s", ErrCorrupt, it.Hash, it.p.name)
		}
		written[cacheKey{it.p, it.off}] = start
		reuse := false
		switch e.typ {
		case Commit, Tree, Blob, Tag:
			_, err = cw.Write(e.raw)
			reuse = true
		case OfsDelta:
			baseHash, ok := it.p.hashAtOffset(e.baseOff)
			if !ok {
				return st, fmt.Errorf("%w: delta base of %s not indexed in %s", ErrCorrupt, it.Hash, it.p.name)
			}
			if boff, ok := written[cacheKey{it.p, e.baseOff}]; ok && o.OfsDelta {
				err = writeDeltaHeader(cw, e, start-boff, Zero)
				reuse = true
			} else if ok || (chosen[baseHash] == nil && o.Thin && o.Has != nil && o.Has(baseHash)) {
				err = writeDeltaHeader(cw, e, 0, baseHash)
				reuse = true
			}
			if reuse && err == nil {
				_, err = cw.Write(e.raw[e.hdrLen:])
			}
		case RefDelta:
			// A base from another pack could form a cycle with a delta
			// stored the other way round there: only same-pack bases (or
			// the receiver's own objects) are safe.
			p, sent := chosen[e.baseHash]
			if (sent && p == it.p) || (!sent && o.Thin && o.Has != nil && o.Has(e.baseHash)) {
				_, err = cw.Write(e.raw)
				reuse = true
			}
		}
		if err != nil {
			return st, err
		}
		if reuse {
			st.Reused++
			if e.typ == OfsDelta || e.typ == RefDelta {
				st.Deltas++
			}
			continue
		}
		t, data, err := s.readPacked(it.p, it.off)
		if err != nil {
			return st, err
		}
		if err := writeWhole(cw, &zw, t, data); err != nil {
			return st, err
		}
		st.Inflated++
	}
	var trailer [20]byte
	sum.Sum(trailer[:0])
	if _, err := bw.Write(trailer[:]); err != nil {
		return st, err
	}
	st.Bytes = cw.n + 20
	return st, bw.Flush()
}

// hashAtOffset names the object stored at off.
func (p *pack) hashAtOffset(off uint64) (Hash, bool) {
	r, _, ok := p.entryAt(off)
	if !ok {
		return Zero, false
	}
	return p.hashAt(int(p.rev[r])), true
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func appendEntryHeader(b []byte, t Type, size int64) []byte {
	c := byte(t)<<4 | byte(size&0x0f) //nolint:gosec // G115: types are 1 to 7
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

func appendOfs(b []byte, rel uint64) []byte {
	var tmp [10]byte
	i := len(tmp) - 1
	tmp[i] = byte(rel & 0x7f)
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		i--
		tmp[i] = 0x80 | byte(rel&0x7f)
	}
	return append(b, tmp[i:]...)
}

func writeDeltaHeader(w io.Writer, e entry, rel uint64, base Hash) error {
	var b []byte
	if base.IsZero() {
		b = appendEntryHeader(make([]byte, 0, 24), OfsDelta, e.size)
		b = appendOfs(b, rel)
	} else {
		b = appendEntryHeader(make([]byte, 0, 32), RefDelta, e.size)
		b = append(b, base[:]...)
	}
	_, err := w.Write(b)
	return err
}

func writeWhole(w io.Writer, zw **zlib.Writer, t Type, data []byte) error {
	if _, err := w.Write(appendEntryHeader(make([]byte, 0, 16), t, int64(len(data)))); err != nil {
		return err
	}
	if *zw == nil {
		*zw = zlib.NewWriter(w)
	} else {
		(*zw).Reset(w)
	}
	if _, err := (*zw).Write(data); err != nil {
		return err
	}
	return (*zw).Close()
}
