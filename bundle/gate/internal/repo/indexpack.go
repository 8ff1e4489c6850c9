package repo

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrTooLarge is wrapped when a received pack exceeds its limit.
var ErrTooLarge = errors.New("the pack is beyond the gate's limits")

// IndexLimits bounds the work a received pack may cause. Zero means no
// limit. What indexing holds in memory at once is about MaxObjects times
// EntryBytes, plus MaxLiveBytes, plus three objects of MaxObjectBytes (a
// delta's base, the delta and its result).
type IndexLimits struct {
	// MaxPackBytes bounds the pack as sent.
	MaxPackBytes int64
	// MaxObjectBytes bounds every object, inflated: whole objects, deltas
	// and the results of deltas.
	MaxObjectBytes int64
	// MaxLiveBytes bounds the delta bases held at once for deltas still to
	// resolve.
	MaxLiveBytes int64
	// MaxObjects bounds the entries of the pack, checked against its
	// header before anything is allocated for them.
	MaxObjects int64
	// MaxInflatedBytes bounds the bytes inflated and rebuilt from deltas in
	// all, and with them the time indexing takes (and the cost of reading
	// any object of the pack later).
	MaxInflatedBytes int64
}

// EntryBytes is about what indexing holds per entry of a pack until it is
// done; IndexLimits.MaxObjects times EntryBytes is their share of memory.
const EntryBytes = 256

// Indexed is a received pack, checked, completed (a thin pack gets the
// bases it borrowed appended) and indexed, waiting in a quarantine
// directory until the push is accepted or refused.
type Indexed struct {
	dir  string
	pack *pack
	// Types has the type of every object the pack was sent with: the
	// bases appended to complete a thin pack are not among them.
	Types map[Hash]Type
	// Borrowed are the bases appended to complete a thin pack.
	Borrowed []Hash
}

// Thin says where the delta bases a thin pack lacks may come from.
type Thin struct {
	// Store holds them; nil refuses every thin pack.
	Store *Store
	// Allow, when set, is asked about the bases the pack lacks before any
	// is read (and about those found nowhere), and its error refuses the
	// pack: the gate lets a push borrow only what the bottle was given.
	Allow func([]Hash) error
}

// Discard removes the quarantine and its objects.
func (ix *Indexed) Discard() error {
	if ix == nil {
		return nil
	}
	if ix.pack != nil {
		ix.pack.close()
	}
	return os.RemoveAll(ix.dir)
}

type pentry struct {
	off, end uint64
	typ      Type // as stored
	size     int64
	baseOff  uint64
	baseHash Hash
	hash     Hash
	rtype    Type // resolved
	crc      uint32
	done     bool
}

type counter struct {
	r   io.Reader
	n   int64
	max int64
	f   io.Writer
}

func (c *counter) Read(p []byte) (int, error) {
	if c.n >= c.max {
		// Read one byte more to tell a pack of exactly max bytes from a
		// longer one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: it is larger than %d bytes", ErrTooLarge, c.max)
		}
		return 0, err
	}
	if int64(len(p)) > c.max-c.n {
		p = p[:c.max-c.n]
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if _, werr := c.f.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	c.n += int64(n)
	return n, err
}

// IndexPack reads a pack from src into a new quarantine directory under the
// repository's objects directory, in the manner of `git index-pack
// --fix-thin`: every object is hashed, deltas are resolved (against the
// pack or, for a thin pack, against thin's store), missing bases are
// appended, and
// an index is written. Nothing becomes visible to the repository until
// Accept.
func (r *Repo) IndexPack(src io.Reader, thin Thin, lim IndexLimits) (_ *Indexed, err error) {
	dir, err := os.MkdirTemp(r.objDir, quarantinePrefix)
	if err != nil {
		return nil, fmt.Errorf("making quarantine: %w", err)
	}
	ix := &Indexed{dir: dir, Types: map[Hash]Type{}}
	defer func() {
		if err != nil {
			ix.Discard()
		}
	}()
	tmpPack := filepath.Join(dir, "tmp.pack")
	f, err := os.OpenFile(tmpPack, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // f is synced (checked) before anything uses the pack
	fw := bufio.NewWriterSize(f, 256<<10)
	cnt := &counter{r: src, max: lim.MaxPackBytes, f: fw}
	if cnt.max <= 0 {
		cnt.max = 1 << 62
	}
	br := bufio.NewReaderSize(cnt, 64<<10)
	pos := func() uint64 { return uint64(cnt.n) - uint64(br.Buffered()) } //nolint:gosec // G115: both counts are non-negative

	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: reading pack header: %w", ErrCorrupt, err)
	}
	if string(hdr[:4]) != "PACK" || (binary.BigEndian.Uint32(hdr[4:]) != 2 && binary.BigEndian.Uint32(hdr[4:]) != 3) {
		return nil, fmt.Errorf("%w: not a version 2 pack", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(hdr[8:])
	if lim.MaxObjects > 0 && int64(n) > lim.MaxObjects {
		return nil, fmt.Errorf("%w: the pack has %d objects, more than the limit of %d", ErrTooLarge, n, lim.MaxObjects)
	}
	var inflated int64
	var entries []pentry
	var zr io.ReadCloser
	var one [1]byte
	for i := uint32(0); i < n; i++ {
		e := pentry{off: pos()}
		c, err := br.ReadByte()
		if err != nil {
			return nil, streamErr(err)
		}
		e.typ = Type((c >> 4) & 7)
		size := int64(c & 0x0f)
		shift := uint(4)
		for c&0x80 != 0 {
			if c, err = br.ReadByte(); err != nil {
				return nil, streamErr(err)
			}
			if shift > 56 {
				return nil, fmt.Errorf("%w: bad entry size", ErrCorrupt)
			}
			size |= int64(c&0x7f) << shift
			shift += 7
		}
		e.size = size
		if lim.MaxObjectBytes > 0 && size > lim.MaxObjectBytes {
			return nil, fmt.Errorf("%w: an object of %d bytes exceeds the limit of %d", ErrTooLarge, size, lim.MaxObjectBytes)
		}
		switch e.typ {
		case Commit, Tree, Blob, Tag:
		case OfsDelta:
			if c, err = br.ReadByte(); err != nil {
				return nil, streamErr(err)
			}
			rel := uint64(c & 0x7f)
			for c&0x80 != 0 {
				if c, err = br.ReadByte(); err != nil {
					return nil, streamErr(err)
				}
				if rel > 1<<56 {
					return nil, fmt.Errorf("%w: bad delta offset", ErrCorrupt)
				}
				rel = (rel+1)<<7 | uint64(c&0x7f)
			}
			if rel == 0 || rel > e.off-12 {
				return nil, fmt.Errorf("%w: delta base offset out of range", ErrCorrupt)
			}
			e.baseOff = e.off - rel
		case RefDelta:
			if _, err := io.ReadFull(br, e.baseHash[:]); err != nil {
				return nil, streamErr(err)
			}
		default:
			return nil, fmt.Errorf("%w: unknown entry type %d", ErrCorrupt, e.typ)
		}
		inflated += size
		if lim.MaxInflatedBytes > 0 && inflated > lim.MaxInflatedBytes {
			return nil, fmt.Errorf("%w: its objects inflate to more than %d bytes", ErrTooLarge, lim.MaxInflatedBytes)
		}
		dataStart := pos()
		if zr == nil {
			if zr, err = zlib.NewReader(br); err != nil {
				return nil, streamErr(err)
			}
		} else if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, streamErr(err)
		}
		var sink = io.Discard
		var sum hash.Hash
		if e.typ != OfsDelta && e.typ != RefDelta {
			sum = newObjectHash()
			sum.Write(objectHeader(e.typ, size))
			sink = sum
		}
		if _, err := io.CopyN(sink, zr, size); err != nil {
			return nil, streamErr(err)
		}
		if k, err := zr.Read(one[:]); k != 0 || err != io.EOF {
			if err != nil && err != io.EOF {
				return nil, streamErr(err)
			}
			return nil, fmt.Errorf("%w: object data longer than its header says", ErrCorrupt)
		}
		e.end = pos()
		if int64(e.end-dataStart) > maxCompressed(size) { //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62); e.end >= dataStart
			// Padding (empty deflate blocks) would make reading the object
			// later cost far more memory than its size.
			return nil, fmt.Errorf("%w: an object of %d bytes takes %d bytes compressed", ErrCorrupt, size, e.end-dataStart)
		}
		if e.typ != OfsDelta && e.typ != RefDelta {
			if e.hash, err = objectSum(sum); err != nil {
				return nil, err
			}
			e.rtype, e.done = e.typ, true
		}
		entries = append(entries, e)
	}
	packEnd := pos()
	var trailer Hash
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return nil, streamErr(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err != nil {
			return nil, streamErr(err)
		}
		return nil, fmt.Errorf("%w: data after the pack", ErrCorrupt)
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}

	// Check the trailer and compute every entry's CRC in one sequential read.
	got, err := hashAndCRC(f, entries, packEnd)
	if err != nil {
		return nil, err
	}
	if got != trailer {
		return nil, fmt.Errorf("%w: pack checksum mismatch", ErrCorrupt)
	}

	rs := &resolver{f: f, entries: entries, lim: lim, thin: thin, inflated: inflated,
		byHash:  make(map[Hash]int, len(entries)),
		ofsKids: map[uint64][]int{}, refKids: map[Hash][]int{}, appendOff: packEnd}
	for i, e := range entries {
		if e.done {
			if _, dup := rs.byHash[e.hash]; dup {
				return nil, fmt.Errorf("%w: object %s appears twice", ErrCorrupt, e.hash)
			}
			rs.byHash[e.hash] = i
		}
	}
	for i, e := range entries {
		switch e.typ {
		case OfsDelta:
			if _, ok := rs.at(e.baseOff); !ok {
				return nil, fmt.Errorf("%w: delta base offset %d is not an object", ErrCorrupt, e.baseOff)
			}
			rs.ofsKids[e.baseOff] = append(rs.ofsKids[e.baseOff], i)
		case RefDelta:
			rs.refKids[e.baseHash] = append(rs.refKids[e.baseHash], i)
		}
	}
	if err := rs.run(); err != nil {
		return nil, err
	}
	entries = rs.entries
	final := trailer
	if len(rs.appended) > 0 {
		binary.BigEndian.PutUint32(hdr[8:], uint32(len(entries))) //nolint:gosec // G115: at most twice the header's uint32 count, which memory bounds long before
		if _, err := f.WriteAt(hdr[8:12], 8); err != nil {
			return nil, err
		}
		if final, err = hashFile(f, rs.appendOff); err != nil {
			return nil, err
		}
		if _, err := f.WriteAt(final[:], int64(rs.appendOff)); err != nil { //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62)
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.off < packEnd {
			ix.Types[e.hash] = e.rtype
		}
	}
	ix.Borrowed = rs.appended
	base16 := filepath.Join(dir, "pack-"+final.String())
	if err := writeIdx(base16+".idx", entries, final); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpPack, base16+".pack"); err != nil {
		return nil, err
	}
	if ix.pack, err = openPack(base16 + ".idx"); err != nil {
		return nil, err
	}
	return ix, nil
}

const quarantinePrefix = "gate-incoming-"

// RemoveGarbage deletes what pushes that crashed or failed left behind:
// every quarantine (call it only when no push is being indexed), and ref
// and packed-refs lock files older than lockAge (git holds its locks for
// moments; a younger one may be the host's git at work). It returns what
// it removed.
func (r *Repo) RemoveGarbage(lockAge time.Duration) []string {
	var removed []string
	ents, _ := os.ReadDir(r.objDir)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), quarantinePrefix) {
			p := filepath.Join(r.objDir, e.Name())
			if os.RemoveAll(p) == nil {
				removed = append(removed, p)
			}
		}
	}
	stale := func(p string, d fs.DirEntry) {
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && time.Since(info.ModTime()) > lockAge {
			if os.Remove(p) == nil {
				removed = append(removed, p)
			}
		}
	}
	//nolint:errcheck // the callback returns nil for every entry, so WalkDir does too
	filepath.WalkDir(filepath.Join(r.dir, "refs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".lock") {
			stale(p, d)
		}
		return nil
	})
	for _, name := range []string{"packed-refs.lock", "HEAD.lock"} {
		p := filepath.Join(r.dir, name)
		if info, err := os.Lstat(p); err == nil {
			stale(p, fs.FileInfoToDirEntry(info))
		}
	}
	return removed
}

// PackName is the name the pack will have in objects/pack, without its
// extension ("pack-<checksum>").
func (ix *Indexed) PackName() string {
	if ix == nil || ix.pack == nil {
		return ""
	}
	return filepath.Base(strings.TrimSuffix(ix.pack.name, ".pack"))
}

// Accept moves an indexed pack into the repository.
func (r *Repo) Accept(ix *Indexed) error {
	if ix == nil || ix.pack == nil {
		return nil
	}
	name := filepath.Base(strings.TrimSuffix(ix.pack.name, ".pack"))
	dst := filepath.Join(r.objDir, "pack", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(dst + ".idx"); err != nil {
		// The pack first: readers find packs by their index.
		if err := os.Rename(ix.pack.name, dst+".pack"); err != nil {
			return fmt.Errorf("moving pack into the repository: %w", err)
		}
		if err := os.Rename(strings.TrimSuffix(ix.pack.name, ".pack")+".idx", dst+".idx"); err != nil {
			return fmt.Errorf("moving pack index into the repository: %w", err)
		}
	}
	ix.Discard()
	return r.Refresh()
}

// maxCompressed is more than zlib ever needs for size bytes, even stored
// uncompressed.
func maxCompressed(size int64) int64 { return size + size>>8 + 256 }

func streamErr(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: pack ends early", ErrCorrupt)
	}
	if strings.Contains(err.Error(), "zlib") || strings.Contains(err.Error(), "flate") {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}

func hashAndCRC(f *os.File, entries []pentry, end uint64) (Hash, error) {
	sum := sha1.New()
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, int64(end)), 256<<10) //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62)
	var h Hash
	if _, err := io.CopyN(sum, r, 12); err != nil {
		return h, err
	}
	buf := make([]byte, 64<<10)
	for i := range entries {
		left := int64(entries[i].end - entries[i].off) //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62); end > off
		crc := uint32(0)
		for left > 0 {
			k := int64(len(buf))
			if k > left {
				k = left
			}
			if _, err := io.ReadFull(r, buf[:k]); err != nil {
				return h, err
			}
			sum.Write(buf[:k])
			crc = crc32.Update(crc, crc32.IEEETable, buf[:k])
			left -= k
		}
		entries[i].crc = crc
	}
	sum.Sum(h[:0])
	return h, nil
}

func hashFile(f *os.File, end uint64) (Hash, error) {
	sum := sha1.New()
	var h Hash
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, int64(end))); err != nil { //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62)
		return h, err
	}
	sum.Sum(h[:0])
	return h, nil
}

type resolver struct {
	f         *os.File
	entries   []pentry // in pack order, so sorted by offset
	lim       IndexLimits
	thin      Thin
	byHash    map[Hash]int
	ofsKids   map[uint64][]int
	refKids   map[Hash][]int
	appendOff uint64
	appended  []Hash
	live      int64
	inflated  int64
	zr        io.ReadCloser
	zw        *zlib.Writer
}

// at finds the entry at off.
func (rs *resolver) at(off uint64) (int, bool) {
	i := sort.Search(len(rs.entries), func(i int) bool { return rs.entries[i].off >= off })
	return i, i < len(rs.entries) && rs.entries[i].off == off
}

// read inflates entry i straight from the pack file: only the inflated
// bytes are held, never the compressed ones besides.
func (rs *resolver) read(i int) ([]byte, error) {
	e := rs.entries[i]
	var hdr [32]byte
	k, err := rs.f.ReadAt(hdr[:min(uint64(len(hdr)), e.end-e.off)], int64(e.off)) //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62)
	if err != nil && err != io.EOF {
		return nil, err
	}
	en := entry{raw: hdr[:k]}
	if err := parseEntryHeader(&en, e.off); err != nil {
		return nil, err
	}
	src := io.NewSectionReader(rs.f, int64(e.off)+int64(en.hdrLen), int64(e.end-e.off)-int64(en.hdrLen)) //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62); end > off
	if rs.zr == nil {
		if rs.zr, err = zlib.NewReader(src); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	} else if err := rs.zr.(zlib.Resetter).Reset(src, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	out := make([]byte, e.size)
	if _, err := io.ReadFull(rs.zr, out); err != nil {
		return nil, fmt.Errorf("%w: inflating: %v", ErrCorrupt, err)
	}
	return out, nil
}

func (rs *resolver) run() error {
	for i := range rs.entries {
		e := rs.entries[i]
		if e.typ == OfsDelta || e.typ == RefDelta {
			continue
		}
		if len(rs.ofsKids[e.off]) == 0 && len(rs.refKids[e.hash]) == 0 {
			continue
		}
		data, err := rs.read(i)
		if err != nil {
			return err
		}
		if err := rs.resolveFrom(data, e.rtype, e.off, true, e.hash, 0); err != nil {
			return err
		}
	}
	// Bases the pack lacks: a thin pack's, borrowed from the repository
	// round by round, as deltas resolved in a round may make the bases of
	// the next.
	for {
		var stored []Hash
		for _, h := range rs.missingBases() {
			if rs.thin.Store != nil && rs.thin.Store.Has(h) {
				stored = append(stored, h)
			}
		}
		if len(stored) == 0 {
			break
		}
		if rs.thin.Allow != nil {
			if err := rs.thin.Allow(stored); err != nil {
				return err
			}
		}
		for _, h := range stored {
			if _, ok := rs.byHash[h]; ok {
				continue // made by a delta resolved meanwhile
			}
			t, data, err := rs.thin.Store.Read(h)
			if err != nil {
				return err
			}
			if err := rs.appendBase(h, t, data); err != nil {
				return err
			}
			if err := rs.resolveFrom(data, t, 0, false, h, 0); err != nil {
				return err
			}
		}
	}
	// Bases found nowhere get Allow's answer too, so that a caller can
	// answer alike for what it does not lend and what does not exist.
	if missing := rs.missingBases(); len(missing) > 0 && rs.thin.Allow != nil {
		if err := rs.thin.Allow(missing); err != nil {
			return err
		}
	}
	for _, e := range rs.entries {
		if !e.done {
			b := e.baseHash.String()
			if e.typ == OfsDelta {
				b = fmt.Sprintf("at offset %d", e.baseOff)
			}
			return fmt.Errorf("%w: delta base %s is missing", ErrCorrupt, b)
		}
	}
	return nil
}

// missingBases lists, sorted, the bases of unresolved deltas that the pack
// has not made.
func (rs *resolver) missingBases() []Hash {
	var missing []Hash
	for h, kids := range rs.refKids {
		if _, ok := rs.byHash[h]; ok {
			continue
		}
		for _, k := range kids {
			if !rs.entries[k].done {
				missing = append(missing, h)
				break
			}
		}
	}
	sort.Slice(missing, func(i, j int) bool { return bytes.Compare(missing[i][:], missing[j][:]) < 0 })
	return missing
}

// pending lists the deltas still to resolve whose base is the object at
// off (when it is in the pack) or named h.
func (rs *resolver) pending(off uint64, inPack bool, h Hash) []int {
	var kids []int
	if inPack {
		kids = append(kids, rs.ofsKids[off]...)
	}
	kids = append(kids, rs.refKids[h]...)
	out := kids[:0]
	for _, k := range kids {
		if !rs.entries[k].done {
			out = append(out, k)
		}
	}
	return out
}

// resolveFrom resolves the deltas whose base is data (the object at off,
// or named h), depth first. A base is dropped once its last delta is
// applied, so a chain holds one object at a time however long it is; the
// bases held for deltas still to come are counted in live, which
// MaxLiveBytes bounds.
func (rs *resolver) resolveFrom(data []byte, t Type, off uint64, inPack bool, h Hash, depth int) error {
next:
	for {
		if depth > maxChain {
			return fmt.Errorf("%w: delta chain longer than %d", ErrCorrupt, maxChain)
		}
		kids := rs.pending(off, inPack, h)
		held := int64(0)
		if len(kids) > 1 {
			held = int64(len(data))
			rs.live += held
			if rs.lim.MaxLiveBytes > 0 && rs.live > rs.lim.MaxLiveBytes {
				return fmt.Errorf("%w: resolving its deltas needs more than %d bytes at once", ErrTooLarge, rs.lim.MaxLiveBytes)
			}
		}
		for i, k := range kids {
			out, kh, err := rs.apply(k, data, t)
			if err != nil {
				return err
			}
			if i == len(kids)-1 {
				rs.live -= held
				data, off, inPack, h = out, rs.entries[k].off, true, kh
				depth++
				continue next
			}
			if err := rs.resolveFrom(out, t, rs.entries[k].off, true, kh, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
}

// apply resolves delta k against base and records the object it makes.
func (rs *resolver) apply(k int, base []byte, t Type) ([]byte, Hash, error) {
	delta, err := rs.read(k)
	if err != nil {
		return nil, Zero, err
	}
	out, err := applyDelta(base, delta, rs.lim.MaxObjectBytes)
	if err != nil {
		return nil, Zero, fmt.Errorf("delta at offset %d: %w", rs.entries[k].off, err)
	}
	rs.inflated += int64(len(out))
	if rs.lim.MaxInflatedBytes > 0 && rs.inflated > rs.lim.MaxInflatedBytes {
		return nil, Zero, fmt.Errorf("%w: its objects inflate to more than %d bytes", ErrTooLarge, rs.lim.MaxInflatedBytes)
	}
	kh, err := HashObject(t, out)
	if err != nil {
		return nil, Zero, err
	}
	if _, dup := rs.byHash[kh]; dup {
		return nil, Zero, fmt.Errorf("%w: object %s appears twice", ErrCorrupt, kh)
	}
	e := &rs.entries[k]
	e.hash, e.rtype, e.done = kh, t, true
	rs.byHash[kh] = k
	return out, kh, nil
}

func (rs *resolver) appendBase(h Hash, t Type, data []byte) error {
	var b bytes.Buffer
	b.Write(appendEntryHeader(nil, t, int64(len(data))))
	if rs.zw == nil {
		rs.zw = zlib.NewWriter(&b)
	} else {
		rs.zw.Reset(&b)
	}
	if _, err := rs.zw.Write(data); err != nil {
		return err
	}
	if err := rs.zw.Close(); err != nil {
		return err
	}
	if _, err := rs.f.WriteAt(b.Bytes(), int64(rs.appendOff)); err != nil { //nolint:gosec // G115: stream positions, which stay below MaxPackBytes (at most 1<<62)
		return err
	}
	e := pentry{off: rs.appendOff, end: rs.appendOff + uint64(b.Len()), typ: t, size: int64(len(data)), //nolint:gosec // G115: a length is non-negative
		hash: h, rtype: t, done: true, crc: crc32.ChecksumIEEE(b.Bytes())}
	rs.appendOff = e.end
	rs.byHash[h] = len(rs.entries)
	rs.entries = append(rs.entries, e)
	rs.appended = append(rs.appended, h)
	return nil
}

func writeIdx(path string, entries []pentry, packSum Hash) error {
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		return bytes.Compare(entries[order[a]].hash[:], entries[order[b]].hash[:]) < 0
	})
	var b bytes.Buffer
	b.Write(idxMagic)
	put32 := func(v uint32) { b.Write(binary.BigEndian.AppendUint32(nil, v)) }
	put32(2)
	var fan [256]uint32
	for _, e := range entries {
		fan[e.hash[0]]++
	}
	total := uint32(0)
	for i := range fan {
		total += fan[i]
		put32(total)
	}
	for _, i := range order {
		b.Write(entries[i].hash[:])
	}
	for _, i := range order {
		put32(entries[i].crc)
	}
	var large []uint64
	for _, i := range order {
		off := entries[i].off
		if off < 0x80000000 {
			put32(uint32(off))
		} else {
			put32(0x80000000 | uint32(len(large))) //nolint:gosec // G115: fewer entries than a pack's uint32 count
			large = append(large, off)
		}
	}
	for _, off := range large {
		b.Write(binary.BigEndian.AppendUint64(nil, off))
	}
	b.Write(packSum[:])
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o444); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
