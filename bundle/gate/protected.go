package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
	"github.com/docker-bottle/docker-bottle/bundle/protect"
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

// entryAt finds the entry at the slash path p in tree; ok is false when
// there is none.
func entryAt(st *repo.Store, tree repo.Hash, p string) (repo.TreeEntry, bool, error) {
	parts := strings.Split(p, "/")
	for i, name := range parts {
		es, err := treeEntries(st, tree)
		if err != nil {
			return repo.TreeEntry{}, false, err
		}
		e, ok := es[name]
		if !ok || (i < len(parts)-1 && !e.IsTree()) {
			return repo.TreeEntry{}, false, nil
		}
		if i == len(parts)-1 {
			return e, true, nil
		}
		tree = e.Hash
	}
	return repo.TreeEntry{}, false, nil
}

// commitTree is the tree of commit h (tags peeled); Zero when h names no
// commit.
func commitTree(st *repo.Store, w *repo.Walker, h repo.Hash) repo.Hash {
	h, _, err := st.Peel(h)
	if err != nil {
		return repo.Zero
	}
	if t, _, err := st.Read(h); err != nil || t != repo.Commit {
		return repo.Zero
	}
	ci, err := w.CommitInfo(h)
	if err != nil {
		return repo.Zero
	}
	return ci.Tree
}

// Bounds on what a push approval shows, within the supervisor's bound on
// a request's detail.
const (
	maxDetailPaths = 3000
	maxShownPath   = 200
)

// describeTouches returns what a human is shown about a push of tip that
// touches protected paths ts (each path with its size where the bottle
// started and at the tip, and how many new commits the push brings), and its
// scope: a digest of every version of those paths the push carries, so
// that an allow-always covers exactly these paths with exactly these
// contents.
func (g *Gate) describeTouches(st *repo.Store, w *repo.Walker, tip repo.Hash, ts []touch, commits int) (detail, scope string) {
	// Sizes are shown against the latest start: the user's branch now
	// when it counts as one, else the start commit.
	startTree, tipTree := repo.Zero, commitTree(st, w, tip)
	if bases, err := g.startBases(st, w); err == nil && len(bases) > 0 {
		startTree = bases[len(bases)-1]
	}
	version := func(tree repo.Hash, p string) (repo.TreeEntry, bool) {
		e, ok, err := entryAt(st, tree, p)
		return e, ok && err == nil
	}
	size := func(e repo.TreeEntry) string {
		switch {
		case e.IsTree():
			return "a folder"
		case e.IsGitlink():
			return "a submodule"
		case e.Mode&0o170000 == 0o120000:
			return "a symlink"
		}
		if _, data, err := st.Read(e.Hash); err == nil {
			return fmt.Sprintf("%d bytes", len(data))
		}
		return "? bytes"
	}
	var versions, paths []string
	seen := map[string]bool{}
	for _, t := range ts {
		for _, tree := range []repo.Hash{commitTree(st, w, t.commit), tipTree} {
			v := t.path + "\x00-"
			if e, ok := version(tree, t.path); ok {
				v = fmt.Sprintf("%s\x00%o %s", t.path, e.Mode, e.Hash)
			}
			versions = append(versions, v)
		}
		if !seen[t.path] {
			seen[t.path] = true
			paths = append(paths, t.path)
		}
	}
	sort.Strings(versions)
	sum := sha256.New()
	for i, v := range versions {
		if i == 0 || v != versions[i-1] {
			fmt.Fprintf(sum, "%s\n", v)
		}
	}
	sort.Strings(paths)
	var b strings.Builder
	fmt.Fprintf(&b, "%d protected path(s) changed in %d new commit(s), tip %.12s:", len(paths), commits, tip)
	for i, p := range paths {
		if b.Len() > maxDetailPaths {
			fmt.Fprintf(&b, " and %d more", len(paths)-i)
			break
		}
		shown := p
		if len(shown) > maxShownPath {
			shown = shown[:maxShownPath] + "..."
		}
		was, hadIt := version(startTree, p)
		now, hasIt := version(tipTree, p)
		switch {
		case !hadIt && hasIt:
			fmt.Fprintf(&b, " %s (new, %s)", shown, size(now))
		case hadIt && !hasIt:
			fmt.Fprintf(&b, " %s (deleted, was %s)", shown, size(was))
		case hadIt && was.Hash == now.Hash && was.Mode == now.Mode:
			fmt.Fprintf(&b, " %s (changed in between, as it was at the tip)", shown)
		case hadIt:
			fmt.Fprintf(&b, " %s (%s -> %s)", shown, size(was), size(now))
		default:
			fmt.Fprintf(&b, " %s (added and removed in between)", shown)
		}
		if i < len(paths)-1 {
			b.WriteByte(',')
		}
	}
	return b.String(), hex.EncodeToString(sum.Sum(nil))
}

// maxStartTrees bounds the trees linkTargets reads when the gate starts.
const maxStartTrees = 50000

// linkTargets lists, as globs, what the symlinks at or above protected
// paths in the start commit's tree point to inside the repository (the
// file, or everything in the folder): a hook kept as a link to a script
// runs that script, and .claude linked to a folder reads its settings
// there, so those are protected too. Links the agent adds at protected
// paths are changes to protected paths themselves.
func (g *Gate) linkTargets() []string {
	if len(g.protected) == 0 || g.start.IsZero() {
		return nil
	}
	st := g.repo.Store()
	w := repo.NewWalker(st, nil)
	ci, err := w.CommitInfo(g.start)
	if err != nil {
		return nil
	}
	var out []string
	budget := maxStartTrees
	var walk func(tree repo.Hash, prefix string) error
	walk = func(tree repo.Hash, prefix string) error {
		if budget--; budget < 0 {
			return fmt.Errorf("more than %d folders", maxStartTrees)
		}
		es, err := treeEntries(st, tree)
		if err != nil {
			return err
		}
		for _, name := range sortedEntryNames(es) {
			e, p := es[name], path.Join(prefix, name)
			switch {
			case e.IsTree() && g.protected.below(p):
				if err := walk(e.Hash, p); err != nil {
					return err
				}
			case e.Mode&0o170000 == 0o120000:
				at, tails := g.protected.match(p), g.protected.tailsBelow(p)
				if !at && len(tails) == 0 {
					continue
				}
				target, err := st.ReadType(e.Hash, repo.Blob)
				if err != nil {
					return err
				}
				t := string(target)
				if strings.HasPrefix(t, "/") {
					continue // outside the repository
				}
				if t = path.Clean(path.Join(path.Dir(p), t)); t == "." || t == ".." || strings.HasPrefix(t, "../") {
					continue
				}
				if at {
					out = append(out, protect.Literal(t), protect.Literal(t)+"/**")
				}
				for _, tail := range tails {
					out = append(out, protect.Literal(t)+"/"+strings.Join(tail, "/"))
				}
			}
		}
		return nil
	}
	if err := walk(ci.Tree, ""); err != nil {
		g.logger.Printf("protected paths: looking for symlinks at protected paths of %s: %v (the rest are not protected as link targets)", g.start, err)
	}
	return out
}

func sortedEntryNames(es map[string]repo.TreeEntry) []string {
	out := make([]string, 0, len(es))
	for n := range es {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
