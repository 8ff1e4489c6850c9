package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Ref is a ref and the object it names.
type Ref struct {
	Name string
	Hash Hash
	// Peeled is the object an annotated tag finally points to; zero when the
	// ref does not name a tag object.
	Peeled Hash
}

// Head is what HEAD says.
type Head struct {
	// Target is the ref HEAD points to when it is symbolic.
	Target   string
	Symbolic bool
	// Hash is the object HEAD resolves to; zero when unborn.
	Hash Hash
}

// ErrStale is wrapped when a ref no longer has the value an update expects.
var ErrStale = errors.New("ref changed meanwhile")

// ErrLocked is wrapped when another writer holds a ref's lock.
var ErrLocked = errors.New("ref is locked")

// Refs lists every ref under refs/, sorted by name (C locale), loose refs
// overriding packed ones. With s, annotated tags are peeled.
func (r *Repo) Refs(s *Store) ([]Ref, error) {
	packed, fullyPeeled, err := r.readPackedRefs()
	if err != nil {
		return nil, err
	}
	refs := map[string]Ref{}
	for _, p := range packed {
		refs[p.Name] = p
	}
	loose := map[string]bool{}
	root := filepath.Join(r.dir, "refs")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasSuffix(path, ".lock") {
			return nil
		}
		rel, err := filepath.Rel(r.dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		h, ok, err := r.resolve(name, 0)
		if err != nil {
			return err
		}
		if ok {
			refs[name] = Ref{Name: name, Hash: h}
			loose[name] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading refs: %w", err)
	}
	out := make([]Ref, 0, len(refs))
	for _, ref := range refs {
		if s != nil && ref.Peeled.IsZero() && (loose[ref.Name] || !fullyPeeled) {
			if p, isTag, err := s.Peel(ref.Hash); err == nil && isTag {
				ref.Peeled = p
			}
		}
		out = append(out, ref)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Peel follows annotated tags to the object they finally name.
func (s *Store) Peel(h Hash) (Hash, bool, error) {
	isTag := false
	for i := 0; i < 16; i++ {
		t, data, err := s.Read(h)
		if err != nil {
			return h, isTag, err
		}
		if t != Tag {
			return h, isTag, nil
		}
		ti, err := ParseTag(data)
		if err != nil {
			return h, isTag, err
		}
		h, isTag = ti.Object, true
	}
	return h, isTag, fmt.Errorf("%w: tag chain too long", ErrCorrupt)
}

func (r *Repo) readPackedRefs() ([]Ref, bool, error) {
	f, err := os.Open(filepath.Join(r.dir, "packed-refs"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer f.Close() //nolint:errcheck // packed-refs is only read here
	var refs []Ref
	fully := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
		case line[0] == '#':
			if bytes.HasPrefix(line, []byte("# pack-refs with:")) && bytes.Contains(line, []byte(" fully-peeled")) {
				fully = true
			}
		case line[0] == '^':
			h, err := ParseHash(string(line[1:]))
			if err != nil || len(refs) == 0 {
				return nil, false, fmt.Errorf("%w: bad peeled line in packed-refs", ErrCorrupt)
			}
			refs[len(refs)-1].Peeled = h
		default:
			hex, name, ok := bytes.Cut(line, []byte{' '})
			h, err := ParseHash(string(hex))
			if !ok || err != nil {
				return nil, false, fmt.Errorf("%w: bad line in packed-refs", ErrCorrupt)
			}
			refs = append(refs, Ref{Name: string(name), Hash: h})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("reading packed-refs: %w", err)
	}
	return refs, fully, nil
}

// resolve reads a ref (loose, then packed), following symbolic refs.
func (r *Repo) resolve(name string, depth int) (Hash, bool, error) {
	if depth > 5 {
		return Zero, false, fmt.Errorf("%w: symbolic ref loop at %s", ErrCorrupt, name)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(name))) //nolint:gosec // G703: pushed names pass the gate's validRefName first; symbolic targets come from the repository's own files, which the agent cannot write
	if err == nil {
		s := strings.TrimSpace(string(b))
		if target, ok := strings.CutPrefix(s, "ref:"); ok {
			return r.resolve(strings.TrimSpace(target), depth+1)
		}
		h, err := ParseHash(s)
		if err != nil {
			return Zero, false, fmt.Errorf("%w: ref %s: %v", ErrCorrupt, name, err)
		}
		return h, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !isDirErr(err) {
		return Zero, false, err
	}
	packed, _, err := r.readPackedRefs()
	if err != nil {
		return Zero, false, err
	}
	for _, p := range packed {
		if p.Name == name {
			return p.Hash, true, nil
		}
	}
	return Zero, false, nil
}

func isDirErr(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if st, serr := os.Stat(pe.Path); serr == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// Resolve returns the object a ref names.
func (r *Repo) Resolve(name string) (Hash, bool, error) { return r.resolve(name, 0) }

// Head reads HEAD.
func (r *Repo) Head() (Head, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, "HEAD"))
	if err != nil {
		return Head{}, fmt.Errorf("reading HEAD: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if target, ok := strings.CutPrefix(s, "ref:"); ok {
		target = strings.TrimSpace(target)
		h, _, err := r.resolve(target, 1)
		if err != nil {
			return Head{}, err
		}
		return Head{Target: target, Symbolic: true, Hash: h}, nil
	}
	h, err := ParseHash(s)
	if err != nil {
		return Head{}, fmt.Errorf("%w: HEAD: %v", ErrCorrupt, err)
	}
	return Head{Hash: h}, nil
}

// Shallow returns the commits the repository itself has without their
// parents (its "shallow" file), when it was made from a shallow clone.
func (r *Repo) Shallow() (map[Hash]bool, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, "shallow"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	out := map[Hash]bool{}
	for _, line := range strings.Fields(string(b)) {
		h, err := ParseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%w: shallow file: %v", ErrCorrupt, err)
		}
		out[h] = true
	}
	return out, nil
}

// RefUpdate changes one ref. Old is the value the ref must have now (Zero:
// it must not exist); New Zero deletes it.
type RefUpdate struct {
	Name     string
	Old, New Hash
}

// UpdateRefs applies all updates or none: it takes git's lock file on every
// ref first (so the host's git sees the same locks), checks every old value,
// and only then moves the new values into place.
func (r *Repo) UpdateRefs(updates []RefUpdate) error {
	names := make([]string, len(updates))
	for i, u := range updates {
		names[i] = u.Name
	}
	if err := RefConflict(names); err != nil {
		return err
	}
	existing, err := r.Refs(nil)
	if err != nil {
		return err
	}
	for _, u := range updates {
		if u.New.IsZero() {
			continue
		}
		for _, e := range existing {
			if strings.HasPrefix(e.Name, u.Name+"/") || strings.HasPrefix(u.Name, e.Name+"/") {
				return fmt.Errorf("cannot create %s: it conflicts with the existing ref %s", u.Name, e.Name)
			}
		}
	}
	var locks []string
	held := map[string]bool{}
	defer func() {
		// However the update ends (an error, a panic), it leaves no lock
		// to block the next one.
		for l := range held {
			os.Remove(l) //nolint:errcheck // a lock left by a failure here is RemoveGarbage's
		}
	}()
	for _, u := range updates {
		path := filepath.Join(r.dir, filepath.FromSlash(u.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", u.Name, err)
		}
		f, err := os.OpenFile(path+".lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s (another update is in progress; retry)", ErrLocked, u.Name)
			}
			return fmt.Errorf("locking %s: %w", u.Name, err)
		}
		locks = append(locks, path+".lock")
		held[path+".lock"] = true
		cur, _, err := r.resolve(u.Name, 0)
		if err != nil {
			f.Close() //nolint:errcheck // nothing written yet; the lock goes in the deferred cleanup
			return err
		}
		if cur != u.Old {
			f.Close() //nolint:errcheck // as above
			return fmt.Errorf("%w: %s is at %s, expected %s", ErrStale, u.Name, cur, u.Old)
		}
		if !u.New.IsZero() {
			_, err = f.WriteString(u.New.String() + "\n")
			if err == nil {
				err = f.Sync()
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", u.Name, err)
		}
	}
	var deletes []string
	for _, u := range updates {
		if u.New.IsZero() {
			deletes = append(deletes, u.Name)
		}
	}
	if len(deletes) > 0 {
		if err := r.removePacked(deletes); err != nil {
			return err
		}
	}
	for i, u := range updates {
		path := filepath.Join(r.dir, filepath.FromSlash(u.Name))
		if u.New.IsZero() {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("deleting %s: %w", u.Name, err)
			}
			os.Remove(locks[i]) //nolint:errcheck // the ref is gone; a stale lock is RemoveGarbage's
			delete(held, locks[i])
			continue
		}
		if err := os.Rename(locks[i], path); err != nil {
			return fmt.Errorf("updating %s: %w", u.Name, err)
		}
		delete(held, locks[i])
	}
	return nil
}

// RefConflict reports two names that cannot be refs at once: the same name
// twice, or a name and a name below it (a/b needs a folder a, a needs a
// file a). Checking this before anything is written keeps a batch from
// failing halfway through.
func RefConflict(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("%s is updated twice", n)
		}
		seen[n] = true
	}
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			if n[i] == '/' && seen[n[:i]] {
				return fmt.Errorf("%s and %s conflict: a ref cannot also be a folder of refs", n[:i], n)
			}
		}
	}
	return nil
}

// removePacked rewrites packed-refs without names, under git's lock.
func (r *Repo) removePacked(names []string) error {
	packed, fully, err := r.readPackedRefs()
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	found := false
	for _, p := range packed {
		if drop[p.Name] {
			found = true
		}
	}
	if !found {
		return nil
	}
	path := filepath.Join(r.dir, "packed-refs")
	f, err := os.OpenFile(path+".lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: packed-refs (another update is in progress; retry)", ErrLocked)
		}
		return err
	}
	var b bytes.Buffer
	if fully {
		b.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	} else {
		b.WriteString("# pack-refs with: sorted \n")
	}
	for _, p := range packed {
		if drop[p.Name] {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", p.Hash, p.Name)
		if !p.Peeled.IsZero() {
			fmt.Fprintf(&b, "^%s\n", p.Peeled)
		}
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".lock", path)
	}
	if err != nil {
		os.Remove(path + ".lock") //nolint:errcheck // the error below is the one to report; RemoveGarbage sweeps the lock
		return fmt.Errorf("rewriting packed-refs: %w", err)
	}
	return nil
}
