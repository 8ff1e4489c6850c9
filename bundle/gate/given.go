package gate

import (
	"errors"
	"fmt"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// What the bottle was given is what its refs reach. The repository holds
// more (a local clone hard-links the user's whole object store: deleted
// secrets, dropped stashes, rewritten history), and the gate must neither
// let a push make such an object reachable nor tell whether one exists:
// an object the bottle was never given gets the answer an object that
// exists nowhere gets.

// neverGiven is the one refusal for an object a push uses without sending
// it and that the bottle was not given, whether it exists or not.
func neverGiven(h repo.Hash) error {
	return fmt.Errorf("the push uses object %s, which this bottle was never given: send it in the push", h)
}

// tips are the objects the bottle was given with all they reach: every
// ref, the tags' targets and HEAD.
func (g *Gate) tips(refs []repo.Ref) []repo.Hash {
	var out []repo.Hash
	for _, ref := range refs {
		out = append(out, ref.Hash)
		if !ref.Peeled.IsZero() {
			out = append(out, ref.Peeled)
		}
	}
	if head, err := g.repo.Head(); err == nil && !head.Hash.IsZero() {
		out = append(out, head.Hash)
	}
	return out
}

// errBaseNeverGiven refuses a thin pack that borrows a delta base the
// bottle was never given, or one that exists nowhere: it names no object,
// since which of several bases it named could tell which exist.
var errBaseNeverGiven = errors.New("a delta in the pack is based on an object this bottle was never given: send that object whole in the push")

// lendBases is IndexPack's Allow: a push may borrow only bases the bottle
// was given.
func (g *Gate) lendBases(hs []repo.Hash) error {
	missing, err := g.notGiven(hs)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errBaseNeverGiven
	}
	return nil
}

// notGiven returns which of hs the refs do not reach. It reads only what
// the refs reach, so its answer and its errors are the same for an
// unreachable object and for a missing one.
func (g *Gate) notGiven(hs []repo.Hash) (map[repo.Hash]bool, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	st := g.repo.Store()
	refs, err := g.repo.Refs(st)
	if err != nil {
		return nil, err
	}
	shallow, err := g.repo.Shallow()
	if err != nil {
		return nil, err
	}
	missing, err := repo.NewWalker(st, shallow).Reachable(hs, g.tips(refs))
	if err != nil {
		return nil, fmt.Errorf("walking what the bottle was given: %w", err)
	}
	out := map[repo.Hash]bool{}
	for _, h := range missing {
		out[h] = true
	}
	return out, nil
}

// usedNotSent walks what a push sent, from tip, and returns what it uses
// without sending: each must be an object the bottle was given. It reads
// only the objects the push sent (seen is shared by the commands of one
// push), so nothing about any other object, not even whether it exists,
// reaches the pusher before the others pass checkGiven.
func usedNotSent(st *repo.Store, ix *repo.Indexed, tip repo.Hash, seen map[repo.Hash]bool) ([]repo.Hash, error) {
	type use struct {
		h   repo.Hash
		typ repo.Type // how it is used; Invalid when anything goes
	}
	var out []repo.Hash
	stack := []use{{tip, repo.Invalid}}
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[u.h] {
			continue
		}
		seen[u.h] = true
		var t repo.Type
		sent := false
		if ix != nil {
			t, sent = ix.Types[u.h]
		}
		if !sent {
			out = append(out, u.h)
			continue
		}
		if u.typ != repo.Invalid && t != u.typ {
			return nil, fmt.Errorf("object %s is a %s but is used as a %s", u.h, t, u.typ)
		}
		if t == repo.Blob {
			continue
		}
		data, err := st.ReadType(u.h, t)
		if err != nil {
			return nil, err
		}
		switch t {
		case repo.Commit:
			ci, err := repo.ParseCommit(data)
			if err != nil {
				return nil, fmt.Errorf("commit %s: %w", u.h, err)
			}
			stack = append(stack, use{ci.Tree, repo.Tree})
			for _, p := range ci.Parents {
				stack = append(stack, use{p, repo.Commit})
			}
		case repo.Tree:
			it := repo.NewTreeIter(data)
			for {
				e, ok := it.Next()
				if !ok {
					break
				}
				switch {
				case e.IsGitlink():
				case e.IsTree():
					stack = append(stack, use{e.Hash, repo.Tree})
				default:
					stack = append(stack, use{e.Hash, repo.Blob})
				}
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("tree %s: %w", u.h, err)
			}
		case repo.Tag:
			ti, err := repo.ParseTag(data)
			if err != nil {
				return nil, fmt.Errorf("tag %s: %w", u.h, err)
			}
			stack = append(stack, use{ti.Object, ti.Type})
		}
	}
	return out, nil
}
