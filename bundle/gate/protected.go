package gate

import (
	"fmt"
	"sort"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// startPoint resolves Config.Start; without a commit, HEAD names it.
func (g *Gate) startPoint() (repo.Hash, string, error) {
	if s := g.cfg.Start; s.Commit != "" {
		h, err := repo.ParseHash(s.Commit)
		return h, s.Ref, err
	}
	head, err := g.repo.Head()
	if err != nil {
		return repo.Zero, "", fmt.Errorf("finding where the bottle starts (HEAD of %s): %w", g.cfg.Repo, err)
	}
	ref := g.cfg.Start.Ref
	if ref == "" && head.Symbolic {
		ref = head.Target
	}
	return head.Hash, ref, nil
}

// startBases are the trees a pushed tip is compared with at protected
// paths: that of the commit where the bottle started and, when the bottle
// cannot write it, that of the user's branch now (the user's own later
// work, which a rebase brings in, is not the agent's change). A start that
// cannot be read counts as an empty tree, so that everything protected in
// the tip is asked about.
func (g *Gate) startBases(st *repo.Store, w *repo.Walker) ([]repo.Hash, error) {
	commits := []repo.Hash{g.start}
	if g.startRef != "" && !g.writable(g.startRef) {
		refs, err := g.repo.Refs(st)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if r.Name == g.startRef && r.Hash != g.start {
				commits = append(commits, r.Hash)
			}
		}
	}
	trees := make([]repo.Hash, 0, len(commits))
	for _, h := range commits {
		tree := repo.Zero
		if !h.IsZero() {
			if ci, err := w.CommitInfo(h); err == nil {
				tree = ci.Tree
			} else {
				g.logger.Printf("push: reading the start commit %s: %v (comparing with an empty tree)", h, err)
			}
		}
		trees = append(trees, tree)
	}
	return trees, nil
}

// writable reports whether the bottle's push rules let it update ref.
func (g *Gate) writable(ref string) bool {
	for _, p := range g.refRules {
		if matchGlob(p, ref) {
			return true
		}
	}
	return false
}

// tipTouches lists the protected paths where the commit tip (a pushed ref's
// new value, tags peeled) differs from every base tree: what the ref would
// carry that the bottle was not started with, however it got there (an old
// commit revived, another branch merged).
func (g *Gate) tipTouches(st *repo.Store, w *repo.Walker, tip repo.Hash, bases []repo.Hash) ([]touch, error) {
	h, _, err := st.Peel(tip)
	if err != nil {
		return nil, err
	}
	if t, _, err := st.Read(h); err != nil || t != repo.Commit {
		return nil, err // a tag of a tree or blob carries no checkout
	}
	ci, err := w.CommitInfo(h)
	if err != nil {
		return nil, err
	}
	changed, err := changedVersus(st, ci.Tree, bases, g.protected)
	if err != nil {
		return nil, err
	}
	var out []touch
	for _, p := range sortedKeys(changed) {
		out = append(out, touch{commit: h, path: p, sinceStart: true})
	}
	return out, nil
}

// changedVersus is the set of protected paths whose entries in tree differ
// from those in every one of bases (Zero is the empty tree).
func changedVersus(st *repo.Store, tree repo.Hash, bases []repo.Hash, m pathMatcher) (map[string]bool, error) {
	var changed map[string]bool
	for i, b := range bases {
		cur := map[string]bool{}
		if err := diffTrees(st, tree, b, "", m, cur); err != nil {
			return nil, err
		}
		if i == 0 {
			changed = cur
			continue
		}
		for k := range changed {
			if !cur[k] {
				delete(changed, k)
			}
		}
	}
	return changed, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// touchesText says what the first touch is, for a refusal.
func touchesText(ref string, ts []touch) string {
	t := ts[0]
	where := fmt.Sprintf("commit %.12s", t.commit)
	if t.sinceStart {
		where = fmt.Sprintf("at %.12s it differs from where the bottle started", t.commit)
	}
	return fmt.Sprintf("%s touches protected path %s (%s)%s", ref, t.path, where, more(len(ts)-1))
}
