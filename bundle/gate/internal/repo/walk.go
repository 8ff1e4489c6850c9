package repo

import (
	"container/heap"
	"fmt"
)

// Walker runs the object walks of one request. It is not safe for
// concurrent use; make one per request.
type Walker struct {
	s *Store
	// grafts are commits treated as having no parents: the repository's own
	// shallow commits and the shallow boundary of the request.
	grafts  map[Hash]bool
	commits map[Hash]*cnode
	flags   map[Hash]uint8
	seq     int
	qLive   int // interesting commits in the queue
}

const (
	fSeen uint8 = 1 << iota
	fUninteresting
	fInQueue
	fOutput
)

type cnode struct {
	h       Hash
	tree    Hash
	parents []Hash
	time    int64
	seq     int
	flags   uint8
}

// NewWalker walks the objects of s, treating grafts as parentless.
func NewWalker(s *Store, grafts map[Hash]bool) *Walker {
	g := map[Hash]bool{}
	for h := range grafts {
		g[h] = true
	}
	return &Walker{s: s, grafts: g, commits: map[Hash]*cnode{}, flags: map[Hash]uint8{}}
}

// Store returns the object store the walker reads.
func (w *Walker) Store() *Store { return w.s }

func (w *Walker) commit(h Hash) (*cnode, error) {
	if c, ok := w.commits[h]; ok {
		return c, nil
	}
	data, err := w.s.ReadType(h, Commit)
	if err != nil {
		return nil, err
	}
	ci, err := ParseCommit(data)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	w.seq++
	c := &cnode{h: h, tree: ci.Tree, parents: ci.Parents, time: ci.Time, seq: w.seq}
	w.commits[h] = c
	return c, nil
}

func (w *Walker) parents(c *cnode) []Hash {
	if w.grafts[c.h] {
		return nil
	}
	return c.parents
}

// CommitInfo returns a commit's tree, parents (after grafts) and time.
func (w *Walker) CommitInfo(h Hash) (CommitInfo, error) {
	c, err := w.commit(h)
	if err != nil {
		return CommitInfo{}, err
	}
	return CommitInfo{Tree: c.tree, Parents: w.parents(c), Time: c.time}, nil
}

type cqueue []*cnode

func (q cqueue) Len() int { return len(q) }
func (q cqueue) Less(i, j int) bool {
	if q[i].time != q[j].time {
		return q[i].time > q[j].time
	}
	return q[i].seq < q[j].seq
}
func (q cqueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *cqueue) Push(x any)   { *q = append(*q, x.(*cnode)) }
func (q *cqueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

func (w *Walker) markUninteresting(c *cnode) {
	stack := []*cnode{c}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x.flags&fUninteresting != 0 {
			continue
		}
		x.flags |= fUninteresting
		if x.flags&fInQueue != 0 {
			w.qLive--
		}
		for _, p := range w.parents(x) {
			// Only parents already loaded need the flag now; the others get
			// it when x itself is taken from the queue.
			if pc, ok := w.commits[p]; ok {
				stack = append(stack, pc)
			}
		}
	}
}

// limit walks commits from interesting and uninteresting roots, newest
// first, and returns the interesting commits that are not ancestors of an
// uninteresting one. It stops once only uninteresting commits are queued:
// a commit kept by mistake then is one the client already has, which costs
// bytes, never correctness.
func (w *Walker) limit(interesting, uninteresting []*cnode) ([]*cnode, error) {
	q := &cqueue{}
	push := func(c *cnode) {
		if c.flags&fSeen != 0 {
			return
		}
		c.flags |= fSeen | fInQueue
		heap.Push(q, c)
		if c.flags&fUninteresting == 0 {
			w.qLive++
		}
	}
	for _, c := range uninteresting {
		w.markUninteresting(c)
		push(c)
	}
	for _, c := range interesting {
		push(c)
	}
	var out []*cnode
	slop := 5
	for q.Len() > 0 {
		c := heap.Pop(q).(*cnode)
		c.flags &^= fInQueue
		if c.flags&fUninteresting == 0 {
			w.qLive--
			out = append(out, c)
		}
		for _, p := range w.parents(c) {
			pc, err := w.commit(p)
			if err != nil {
				return nil, fmt.Errorf("parent of %s: %w", c.h, err)
			}
			if c.flags&fUninteresting != 0 {
				w.markUninteresting(pc)
			}
			push(pc)
		}
		if w.qLive == 0 {
			if slop--; slop == 0 {
				break
			}
		} else {
			slop = 5
		}
	}
	res := out[:0]
	for _, c := range out {
		if c.flags&fUninteresting == 0 {
			res = append(res, c)
		}
	}
	return res, nil
}

// Object is an object to send, with its type.
type Object struct {
	Hash Hash
	Type Type
}

// EnumOptions says what to enumerate.
type EnumOptions struct {
	// Wants are the tips to send (any object type).
	Wants []Hash
	// Haves are objects the other side has, with everything they reach.
	Haves []Hash
	// Edges are commits the other side has (its trees too) though they are
	// no ancestors of Haves, e.g. commits a deepening fetch unshallows.
	Edges []Hash
	// NoBlobs leaves out blobs not wanted by name (filter blob:none).
	NoBlobs bool
	// CheckBlobs verifies that every blob to send is stored; by default a
	// blob is taken on its tree's word until the pack is written.
	CheckBlobs bool
}

// Enumeration is the result of Enumerate.
type Enumeration struct {
	Objects []Object
	// Commits are the commits sent, newest first.
	Commits []Hash
	w       *Walker
}

// Has reports whether the other side has h, as far as the walk found out:
// such objects may serve as bases of a thin pack.
func (e *Enumeration) Has(h Hash) bool {
	if c, ok := e.w.commits[h]; ok && c.flags&fUninteresting != 0 {
		return true
	}
	return e.w.flags[h]&fUninteresting != 0
}

// Enumerate lists the objects reachable from the wants and not from the
// haves, the way `git rev-list --objects wants --not haves` does.
func (w *Walker) Enumerate(o EnumOptions) (*Enumeration, error) {
	e := &Enumeration{w: w}
	var interesting, uninteresting []*cnode
	var trees []Hash
	add := func(h Hash, t Type) {
		if w.flags[h]&(fOutput|fUninteresting) != 0 {
			return
		}
		w.flags[h] |= fOutput | fSeen
		e.Objects = append(e.Objects, Object{h, t})
	}
	for _, h := range o.Haves {
		for i := 0; i < 16; i++ {
			t, data, err := w.s.Read(h)
			if err != nil {
				break // they have what we do not: nothing to mark
			}
			if t == Commit {
				c, err := w.commit(h)
				if err != nil {
					return nil, err
				}
				uninteresting = append(uninteresting, c)
				break
			}
			w.flags[h] |= fUninteresting
			if t != Tag {
				break
			}
			ti, err := ParseTag(data)
			if err != nil {
				return nil, fmt.Errorf("tag %s: %w", h, err)
			}
			h = ti.Object
		}
	}
	var edges []*cnode
	for _, h := range o.Edges {
		c, err := w.commit(h)
		if err != nil {
			return nil, err
		}
		uninteresting = append(uninteresting, c)
		edges = append(edges, c)
	}
	for _, h := range o.Wants {
		for i := 0; ; i++ {
			if i == 16 {
				return nil, fmt.Errorf("%w: tag chain too long at %s", ErrCorrupt, h)
			}
			t, data, err := w.s.Read(h)
			if err != nil {
				return nil, err
			}
			switch t {
			case Commit:
				c, err := w.commit(h)
				if err != nil {
					return nil, err
				}
				interesting = append(interesting, c)
			case Tree:
				trees = append(trees, h)
			case Blob:
				add(h, Blob)
			case Tag:
				add(h, Tag)
				ti, err := ParseTag(data)
				if err != nil {
					return nil, fmt.Errorf("tag %s: %w", h, err)
				}
				h = ti.Object
				continue
			}
			break
		}
	}
	commits, err := w.limit(interesting, uninteresting)
	if err != nil {
		return nil, err
	}
	// The trees of the boundary commits are on the other side: mark them so
	// that unchanged subtrees and blobs are not sent again.
	for _, c := range commits {
		for _, p := range w.parents(c) {
			if pc, ok := w.commits[p]; ok && pc.flags&fUninteresting != 0 {
				edges = append(edges, pc)
			}
		}
	}
	for _, c := range edges {
		if err := w.markTreeUninteresting(c.tree); err != nil {
			return nil, err
		}
	}
	for _, c := range commits {
		add(c.h, Commit)
		e.Commits = append(e.Commits, c.h)
	}
	for _, c := range commits {
		if err := w.walkTree(c.tree, o.NoBlobs, o.CheckBlobs, add); err != nil {
			return nil, fmt.Errorf("commit %s: %w", c.h, err)
		}
	}
	for _, t := range trees {
		w.flags[t] &^= fUninteresting // wanted by name
		if err := w.walkTree(t, o.NoBlobs, o.CheckBlobs, add); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (w *Walker) markTreeUninteresting(root Hash) error {
	stack := []Hash{root}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.flags[t]&fUninteresting != 0 {
			continue
		}
		w.flags[t] |= fUninteresting
		data, err := w.s.ReadType(t, Tree)
		if err != nil {
			continue // the other side's tree need not be complete here
		}
		it := NewTreeIter(data)
		for {
			ent, ok := it.Next()
			if !ok {
				break
			}
			switch {
			case ent.IsGitlink():
			case ent.IsTree():
				stack = append(stack, ent.Hash)
			default:
				w.flags[ent.Hash] |= fUninteresting
			}
		}
	}
	return nil
}

func (w *Walker) walkTree(root Hash, noBlobs, checkBlobs bool, add func(Hash, Type)) error {
	stack := []Hash{root}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.flags[t]&(fOutput|fUninteresting) != 0 {
			continue
		}
		data, err := w.s.ReadType(t, Tree)
		if err != nil {
			return err
		}
		add(t, Tree)
		it := NewTreeIter(data)
		for {
			ent, ok := it.Next()
			if !ok {
				break
			}
			switch {
			case ent.IsGitlink():
			case ent.IsTree():
				if w.flags[ent.Hash]&(fOutput|fUninteresting) == 0 {
					stack = append(stack, ent.Hash)
				}
			default:
				if noBlobs || w.flags[ent.Hash]&(fOutput|fUninteresting) != 0 {
					continue
				}
				if checkBlobs && !w.s.Has(ent.Hash) {
					return fmt.Errorf("%w: blob %s", ErrNotFound, ent.Hash)
				}
				add(ent.Hash, Blob)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("tree %s: %w", t, err)
		}
	}
	return nil
}

// IsAncestor reports whether anc is tip or one of its ancestors.
func (w *Walker) IsAncestor(anc, tip Hash) (bool, error) {
	seen := map[Hash]bool{tip: true}
	queue := []Hash{tip}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h == anc {
			return true, nil
		}
		c, err := w.commit(h)
		if err != nil {
			return false, err
		}
		for _, p := range w.parents(c) {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// Reachable returns the targets that are not reachable from tips. It walks
// commits newest first and stops as soon as every target is found, so the
// usual question (objects of a recent tree) is answered quickly.
func (w *Walker) Reachable(targets, tips []Hash) ([]Hash, error) {
	return w.reachable(targets, tips, true)
}

// ReachableCommits is Reachable for commits: it walks no trees, so a
// target that is no commit counts as unreachable unless a tip names it.
func (w *Walker) ReachableCommits(targets, tips []Hash) ([]Hash, error) {
	return w.reachable(targets, tips, false)
}

func (w *Walker) reachable(targets, tips []Hash, trees bool) ([]Hash, error) {
	left := map[Hash]bool{}
	for _, t := range targets {
		left[t] = true
	}
	seen := map[Hash]bool{}
	q := &cqueue{}
	visitTree := func(root Hash) error {
		stack := []Hash{root}
		for len(stack) > 0 && len(left) > 0 {
			t := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[t] {
				continue
			}
			seen[t] = true
			delete(left, t)
			data, err := w.s.ReadType(t, Tree)
			if err != nil {
				return err
			}
			it := NewTreeIter(data)
			for {
				ent, ok := it.Next()
				if !ok {
					break
				}
				if ent.IsGitlink() || seen[ent.Hash] {
					continue
				}
				if ent.IsTree() {
					stack = append(stack, ent.Hash)
				} else {
					seen[ent.Hash] = true
					delete(left, ent.Hash)
				}
			}
		}
		return nil
	}
	pushCommit := func(h Hash) error {
		if seen[h] {
			return nil
		}
		seen[h] = true
		delete(left, h)
		c, err := w.commit(h)
		if err != nil {
			return err
		}
		heap.Push(q, c)
		return nil
	}
	for _, h := range tips {
		if len(left) == 0 {
			break
		}
		for i := 0; i < 16; i++ {
			if seen[h] {
				break
			}
			t, data, err := w.s.Read(h)
			if err != nil {
				return nil, err
			}
			if t == Commit {
				if err := pushCommit(h); err != nil {
					return nil, err
				}
				break
			}
			if t == Tree && trees {
				if err := visitTree(h); err != nil {
					return nil, err
				}
			}
			seen[h] = true
			delete(left, h)
			if t != Tag {
				break
			}
			ti, err := ParseTag(data)
			if err != nil {
				return nil, err
			}
			h = ti.Object
		}
	}
	for q.Len() > 0 && len(left) > 0 {
		c := heap.Pop(q).(*cnode)
		if trees {
			if err := visitTree(c.tree); err != nil {
				return nil, err
			}
		}
		for _, p := range w.parents(c) {
			if err := pushCommit(p); err != nil {
				return nil, err
			}
		}
	}
	var out []Hash
	for _, t := range targets {
		if left[t] {
			out = append(out, t)
		}
	}
	return out, nil
}
