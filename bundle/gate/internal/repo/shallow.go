package repo

import "fmt"

// DeepenOptions describes a shallow request.
type DeepenOptions struct {
	// Wants are the commits asked for (tags already peeled).
	Wants []Hash
	// ClientShallow are the commits the client has without their parents.
	ClientShallow map[Hash]bool
	// Depth > 0 keeps that many commits from each want.
	Depth int
	// Relative counts Depth from the client's current shallow boundary.
	Relative bool
	// Since > 0 keeps commits made at or after this time (deepen-since).
	Since int64
	// Not excludes commits reachable from these (deepen-not).
	Not []Hash
}

// DeepenResult is the new shallow boundary and what the pack walk needs to
// honour it.
type DeepenResult struct {
	// Shallow are commits to announce as shallow: their parents are not sent.
	Shallow []Hash
	// Unshallow are client shallow commits whose parents are now sent.
	Unshallow []Hash
	// Grafts are the commits the pack walk must treat as parentless: the
	// new border and every client shallow commit.
	Grafts map[Hash]bool
	// ExtraWants are the parents of unshallowed commits.
	ExtraWants []Hash
	// Edges are the unshallowed commits themselves (the client has them).
	Edges []Hash
}

// Deepen computes the commits a shallow fetch keeps (the set S), its border
// (commits of S with a parent outside S) and the shallow/unshallow lines to
// send, the way upload-pack does.
func (w *Walker) Deepen(o DeepenOptions) (*DeepenResult, error) {
	in := map[Hash]bool{}
	switch {
	case o.Depth > 0:
		depth := o.Depth
		if o.Relative {
			cur, err := w.shallowDepth(o.Wants, o.ClientShallow)
			if err != nil {
				return nil, err
			}
			if cur == 0 {
				return &DeepenResult{Grafts: copySet(o.ClientShallow)}, nil
			}
			depth += cur
		}
		type item struct {
			h Hash
			d int
		}
		var queue []item
		for _, h := range o.Wants {
			if !in[h] {
				in[h] = true
				queue = append(queue, item{h, 1})
			}
		}
		for len(queue) > 0 {
			it := queue[0]
			queue = queue[1:]
			if it.d >= depth {
				continue
			}
			c, err := w.commit(it.h)
			if err != nil {
				return nil, err
			}
			for _, p := range w.parents(c) {
				if !in[p] {
					in[p] = true
					queue = append(queue, item{p, it.d + 1})
				}
			}
		}
	default:
		excluded := map[Hash]bool{}
		if len(o.Not) > 0 {
			stack := append([]Hash(nil), o.Not...)
			for len(stack) > 0 {
				h := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if excluded[h] {
					continue
				}
				excluded[h] = true
				c, err := w.commit(h)
				if err != nil {
					return nil, err
				}
				stack = append(stack, w.parents(c)...)
			}
		}
		keep := func(c *cnode) bool {
			return !excluded[c.h] && (o.Since == 0 || c.time >= o.Since)
		}
		var stack []Hash
		for _, h := range o.Wants {
			c, err := w.commit(h)
			if err != nil {
				return nil, err
			}
			if keep(c) && !in[h] {
				in[h] = true
				stack = append(stack, h)
			}
		}
		for len(stack) > 0 {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			c, _ := w.commit(h)
			for _, p := range w.parents(c) {
				if in[p] {
					continue
				}
				pc, err := w.commit(p)
				if err != nil {
					return nil, err
				}
				if keep(pc) {
					in[p] = true
					stack = append(stack, p)
				}
			}
		}
		if len(in) == 0 {
			return nil, fmt.Errorf("no commits selected for shallow requests")
		}
	}
	res := &DeepenResult{Grafts: map[Hash]bool{}}
	border := map[Hash]bool{}
	for h := range in {
		c, err := w.commit(h)
		if err != nil {
			return nil, err
		}
		isBorder := w.grafts[h] && len(c.parents) > 0 // the repository itself lacks the parents
		for _, p := range w.parents(c) {
			if !in[p] {
				isBorder = true
			}
		}
		if isBorder {
			border[h] = true
			res.Grafts[h] = true
			if !o.ClientShallow[h] {
				res.Shallow = append(res.Shallow, h)
			}
		}
	}
	for h := range o.ClientShallow {
		if in[h] && !border[h] {
			res.Unshallow = append(res.Unshallow, h)
			res.Edges = append(res.Edges, h)
			c, err := w.commit(h)
			if err != nil {
				return nil, err
			}
			res.ExtraWants = append(res.ExtraWants, w.parents(c)...)
		}
		// Every client shallow commit stays parentless for the pack walk,
		// unshallowed ones too: the client has them but not their parents
		// (those are wanted explicitly), so "the client has it" must not
		// flow through them.
		res.Grafts[h] = true
	}
	sortHashes(res.Shallow)
	sortHashes(res.Unshallow)
	return res, nil
}

// shallowDepth is the smallest depth, counted from the wants, at which a
// client shallow commit sits (deepen-relative).
func (w *Walker) shallowDepth(wants []Hash, shallow map[Hash]bool) (int, error) {
	type item struct {
		h Hash
		d int
	}
	seen := map[Hash]bool{}
	var queue []item
	for _, h := range wants {
		if !seen[h] {
			seen[h] = true
			queue = append(queue, item{h, 1})
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if shallow[it.h] {
			return it.d, nil
		}
		c, err := w.commit(it.h)
		if err != nil {
			return 0, err
		}
		for _, p := range w.parents(c) {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, item{p, it.d + 1})
			}
		}
	}
	return 0, nil
}

// SetGrafts adds commits the walks treat as parentless from now on.
func (w *Walker) SetGrafts(g map[Hash]bool) {
	for h := range g {
		w.grafts[h] = true
	}
}

func copySet(m map[Hash]bool) map[Hash]bool {
	out := map[Hash]bool{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortHashes(hs []Hash) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && string(hs[j][:]) < string(hs[j-1][:]); j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}
