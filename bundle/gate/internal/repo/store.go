package repo

import (
	"bytes"
	"compress/zlib"
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Repo is a bare repository on disk. It is safe for concurrent use: readers
// see new packs after Refresh, and packs are only ever added by renaming
// complete files into place, never modified (they may be hard links shared
// with the user's own repository).
type Repo struct {
	dir    string
	objDir string

	mu    sync.RWMutex
	packs []*pack // newest first

	cache *objCache
}

// DefaultCacheBytes bounds the cache of inflated objects shared by all
// requests (delta bases and trees the walks read again and again).
const DefaultCacheBytes = 48 << 20

// Open opens the bare repository at dir.
func Open(dir string) (*Repo, error) {
	for _, p := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return nil, fmt.Errorf("%s is not a bare git repository (no %s): %w", dir, p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "info", "alternates")); err == nil {
		return nil, fmt.Errorf("%s borrows objects from another repository (objects/info/alternates), which the gate cannot read: make it with a plain local clone", dir)
	}
	r := &Repo{dir: dir, objDir: filepath.Join(dir, "objects"), cache: newObjCache(DefaultCacheBytes)}
	if err := r.Refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// Dir returns the repository's directory.
func (r *Repo) Dir() string { return r.dir }

// Close closes the open pack files.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.packs {
		p.close()
	}
	r.packs = nil
	return nil
}

// Refresh rescans objects/pack: packs added since (by the host's git or by a
// push) become visible, packs removed are dropped.
func (r *Repo) Refresh() error {
	dir := filepath.Join(r.objDir, "pack")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listing packs: %w", err)
	}
	type found struct {
		idx string
		mod int64
	}
	var idxs []found
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".idx") || !strings.HasPrefix(e.Name(), "pack-") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		idxs = append(idxs, found{filepath.Join(dir, e.Name()), info.ModTime().UnixNano()})
	}
	sort.SliceStable(idxs, func(i, j int) bool { return idxs[i].mod > idxs[j].mod })

	r.mu.Lock()
	defer r.mu.Unlock()
	old := map[string]*pack{}
	for _, p := range r.packs {
		old[p.name] = p
	}
	var packs []*pack
	for _, f := range idxs {
		name := strings.TrimSuffix(f.idx, ".idx") + ".pack"
		if p, ok := old[name]; ok {
			packs = append(packs, p)
			delete(old, name)
			continue
		}
		p, err := openPack(f.idx)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed by a concurrent repack
			}
			return err
		}
		packs = append(packs, p)
	}
	// Packs that vanished stay open until no request can hold them; the
	// few file descriptors are not worth reference counting.
	r.packs = packs
	return nil
}

// Store returns a view of the objects as of now.
func (r *Repo) Store() *Store {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return &Store{r: r, packs: append([]*pack(nil), r.packs...)}
}

// Store reads objects: the repository's packs and loose objects, plus any
// quarantined pack of a push under inspection.
type Store struct {
	r     *Repo
	packs []*pack
}

// With returns a view that also sees the objects of an indexed, not yet
// accepted push.
func (s *Store) With(q *Indexed) *Store {
	if q == nil || q.pack == nil {
		return s
	}
	return &Store{r: s.r, packs: append([]*pack{q.pack}, s.packs...)}
}

type location struct {
	p   *pack // nil for a loose object
	off uint64
}

func (s *Store) locate(h Hash) (location, bool) {
	for _, p := range s.packs {
		if pos, ok := p.find(h); ok {
			off, err := p.offsetAt(pos)
			if err != nil {
				continue
			}
			return location{p: p, off: off}, true
		}
	}
	if _, err := os.Stat(s.loosePath(h)); err == nil {
		return location{}, true
	}
	return location{}, false
}

func (s *Store) loosePath(h Hash) string {
	x := h.String()
	return filepath.Join(s.r.objDir, x[:2], x[2:])
}

// Has reports whether the object is stored (reachable or not).
func (s *Store) Has(h Hash) bool {
	_, ok := s.locate(h)
	return ok
}

// Read returns an object's type and content.
func (s *Store) Read(h Hash) (Type, []byte, error) {
	loc, ok := s.locate(h)
	if !ok {
		return Invalid, nil, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	if loc.p == nil {
		return s.readLoose(h)
	}
	return s.readPacked(loc.p, loc.off)
}

// ReadType reads h and checks its type.
func (s *Store) ReadType(h Hash, want Type) ([]byte, error) {
	t, data, err := s.Read(h)
	if err != nil {
		return nil, err
	}
	if t != want {
		return nil, fmt.Errorf("%w: %s is a %s, not a %s", ErrCorrupt, h, t, want)
	}
	return data, nil
}

// maxChain bounds delta chains: git writes 50 by default and never more
// than 4095 (the most pack.depth takes).
const maxChain = 4095

func (s *Store) readPacked(p *pack, off uint64) (Type, []byte, error) {
	// The chain keeps where its deltas are, not their data: each is read
	// again when applied, so a long chain of large deltas is never held
	// whole.
	type link struct {
		p   *pack
		off uint64
	}
	var chain []link
	var baseType Type
	var base []byte
	cp, coff := p, off
	for {
		if t, data, ok := s.r.cache.get(cp, coff); ok {
			baseType, base = t, data
			break
		}
		e, err := cp.readEntry(coff, nil)
		if err != nil {
			return Invalid, nil, err
		}
		switch e.typ {
		case OfsDelta:
			chain = append(chain, link{cp, coff})
			coff = e.baseOff
		case RefDelta:
			chain = append(chain, link{cp, coff})
			if pos, ok := cp.find(e.baseHash); ok {
				o, err := cp.offsetAt(pos)
				if err != nil {
					return Invalid, nil, err
				}
				coff = o
				break
			}
			loc, ok := s.locate(e.baseHash)
			if !ok {
				return Invalid, nil, fmt.Errorf("%w: delta base %s", ErrNotFound, e.baseHash)
			}
			if loc.p == nil {
				baseType, base, err = s.readLoose(e.baseHash)
				if err != nil {
					return Invalid, nil, err
				}
				goto resolve
			}
			cp, coff = loc.p, loc.off
		default:
			data, err := inflate(e.raw[e.hdrLen:], e.size)
			if err != nil {
				return Invalid, nil, fmt.Errorf("%s at %d: %w", cp.name, coff, err)
			}
			baseType, base = e.typ, data
			s.r.cache.put(cp, coff, baseType, base)
			goto resolve
		}
		if len(chain) > maxChain {
			return Invalid, nil, fmt.Errorf("%w: delta chain longer than %d in %s", ErrCorrupt, maxChain, p.name)
		}
	}
resolve:
	for i := len(chain) - 1; i >= 0; i-- {
		l := chain[i]
		e, err := l.p.readEntry(l.off, nil)
		if err != nil {
			return Invalid, nil, err
		}
		delta, err := inflate(e.raw[e.hdrLen:], e.size)
		if err != nil {
			return Invalid, nil, fmt.Errorf("%s at %d: %w", l.p.name, l.off, err)
		}
		base, err = applyDelta(base, delta, 0)
		if err != nil {
			return Invalid, nil, fmt.Errorf("%s at %d: %w", l.p.name, l.off, err)
		}
		s.r.cache.put(l.p, l.off, baseType, base)
	}
	return baseType, base, nil
}

func (s *Store) readLoose(h Hash) (Type, []byte, error) {
	f, err := os.Open(s.loosePath(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Invalid, nil, fmt.Errorf("%w: %s", ErrNotFound, h)
		}
		return Invalid, nil, err
	}
	defer f.Close() //nolint:errcheck // only read
	zr, err := zlib.NewReader(f)
	if err != nil {
		return Invalid, nil, fmt.Errorf("%w: loose object %s: %v", ErrCorrupt, h, err)
	}
	defer zr.Close()
	var hdr [64]byte
	n, _ := io.ReadAtLeast(zr, hdr[:], 1)
	nul := bytes.IndexByte(hdr[:n], 0)
	if nul < 0 {
		return Invalid, nil, fmt.Errorf("%w: loose object %s has no header", ErrCorrupt, h)
	}
	typName, sizeStr, _ := bytes.Cut(hdr[:nul], []byte{' '})
	t := parseType(typName)
	size, err := strconv.ParseInt(string(sizeStr), 10, 64)
	if t == Invalid || err != nil || size < 0 {
		return Invalid, nil, fmt.Errorf("%w: loose object %s has a bad header", ErrCorrupt, h)
	}
	data := make([]byte, size)
	got := copy(data, hdr[nul+1:n])
	if int64(got) < size {
		if _, err := io.ReadFull(zr, data[got:]); err != nil {
			return Invalid, nil, fmt.Errorf("%w: loose object %s: %v", ErrCorrupt, h, err)
		}
	}
	return t, data, nil
}

// objCache is a byte-bounded LRU of inflated pack entries.
type objCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	p   *pack
	off uint64
}

type cacheVal struct {
	key  cacheKey
	typ  Type
	data []byte
}

func newObjCache(limit int64) *objCache {
	return &objCache{max: limit, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

func (c *objCache) get(p *pack, off uint64) (Type, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[cacheKey{p, off}]
	if !ok {
		return Invalid, nil, false
	}
	c.ll.MoveToFront(el)
	v := el.Value.(*cacheVal)
	return v.typ, v.data, true
}

func (c *objCache) put(p *pack, off uint64, t Type, data []byte) {
	sz := int64(len(data)) + 64
	if sz > c.max/8 {
		return // one huge blob must not flush everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{p, off}
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheVal{key: k, typ: t, data: data})
	c.size += sz
	for c.size > c.max {
		el := c.ll.Back()
		v := el.Value.(*cacheVal)
		c.ll.Remove(el)
		delete(c.items, v.key)
		c.size -= int64(len(v.data)) + 64
	}
}
