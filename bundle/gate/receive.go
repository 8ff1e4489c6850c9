package gate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/pktline"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// maxCommands bounds the ref updates of one push, and maxRefName the name
// of each (git's own limit is the pkt-line's): the commands are held in
// memory before anything else is checked.
const (
	maxCommands = 1000
	maxRefName  = 1024
)

type command struct {
	old, new repo.Hash
	ref      string
	// reason is why the update is refused ("" while it is not); protected
	// marks a refusal that a human may overturn.
	reason    string
	protected []touch
	approval  string
	// detail and scope describe the protected paths for a human
	// (describeTouches).
	detail, scope string
}

type touch struct {
	commit repo.Hash
	path   string
	// sinceStart marks a path where the pushed tip (commit) differs from
	// where the bottle started, though no new commit changes it.
	sinceStart bool
}

func (c *command) refuse(format string, args ...any) {
	if c.reason == "" {
		c.reason = fmt.Sprintf(format, args...)
	}
}

func readCommands(pr *pktline.Reader) ([]*command, []string, error) {
	var cmds []*command
	var caps []string
	for {
		k, p, err := pr.ReadLine()
		if err == io.EOF {
			if len(cmds) == 0 {
				return nil, nil, nil
			}
			return nil, nil, badRequest("push request ends before its flush packet")
		}
		if err != nil {
			return nil, nil, err
		}
		if k == pktline.Flush {
			return cmds, caps, nil
		}
		if k != pktline.Data {
			return nil, nil, badRequest("unexpected special packet in the push commands")
		}
		line := string(p)
		if strings.HasPrefix(line, "shallow ") {
			continue // a shallow client's boundary; connectivity is checked below
		}
		if strings.HasPrefix(line, "push-cert") {
			return nil, nil, badRequest("signed pushes are not supported by the git gate")
		}
		if len(cmds) == 0 {
			if i := strings.IndexByte(line, 0); i >= 0 {
				caps = strings.Fields(line[i+1:])
				line = line[:i]
			}
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			return nil, nil, badRequest("malformed push command %q", truncate(line))
		}
		old, err1 := repo.ParseHash(f[0])
		nw, err2 := repo.ParseHash(f[1])
		if err1 != nil || err2 != nil {
			return nil, nil, badRequest("malformed push command %q", truncate(line))
		}
		if len(f[2]) > maxRefName {
			return nil, nil, badRequest("ref name of %d bytes in a push command: the git gate takes at most %d", len(f[2]), maxRefName)
		}
		cmds = append(cmds, &command{old: old, new: nw, ref: f[2]})
		if len(cmds) > maxCommands {
			return nil, nil, badRequest("more than %d ref updates in one push", maxCommands)
		}
	}
}

func (g *Gate) receivePack(w http.ResponseWriter, r *http.Request, body io.Reader) {
	pr := pktline.NewReader(body)
	cmds, caps, err := readCommands(pr)
	if err != nil {
		g.requestFailed(w, err)
		return
	}
	if hasCap(caps, "push-options") {
		g.requestFailed(w, badRequest("push options are not supported by the git gate"))
		return
	}
	if v, ok := capValue(caps, "object-format"); ok && v != "sha1" {
		g.requestFailed(w, badRequest("object format %q is not supported (sha1 only)", v))
		return
	}
	noCache(w)
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	if len(cmds) == 0 {
		return // git probes authentication with an empty request
	}
	start := time.Now()
	bw := bufio.NewWriterSize(w, 16<<10)
	defer bw.Flush()
	pw := pktline.NewWriter(bw)
	sideband := hasCap(caps, "side-band-64k")
	var msgs = io.Discard
	if sideband {
		msgs = pw.Band(2, pktline.MaxLen)
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(msgs, format+"\n", args...)
		bw.Flush()
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}

	for _, c := range cmds {
		g.checkRule(c)
	}
	refuseConflicts(cmds)
	// A push is all or nothing: one update the rules refuse refuses it
	// whole, before its pack is read, let alone indexed.
	allOrNothing(cmds)
	unpack := "ok"
	lim := pushLimits(g.memory, g.cfg.MaxPackBytes)
	if !refusedAny(cmds) {
		unpack = g.applyPush(r.Context(), pr, cmds, lim, say)
	}
	// Read what is left of the pack (boundedly) so that git gets the
	// report rather than a broken connection.
	io.Copy(io.Discard, io.LimitReader(pr.Buffered(), lim.MaxPackBytes+1)) //nolint:errcheck // a read error here leaves only the report to send
	g.sweepIfIdle()
	for _, c := range cmds {
		if c.reason != "" && c.reason != "unpacker error" {
			say("refused: %s", c.reason)
		}
	}
	if unpack != "ok" {
		say("refused: the pushed pack was not accepted: %s", unpack)
	}
	if hasCap(caps, "report-status") {
		var buf bytes.Buffer
		rp := pktline.NewWriter(&buf)
		if unpack == "ok" {
			rp.Line("unpack ok")
		} else {
			rp.Line("unpack " + oneLine(unpack))
		}
		for _, c := range cmds {
			if c.reason == "" {
				rp.Line("ok " + c.ref)
			} else {
				rp.Line("ng " + c.ref + " " + oneLine(c.reason))
			}
		}
		rp.Flush()
		if sideband {
			pw.Band(1, pktline.MaxLen).Write(buf.Bytes()) //nolint:errcheck // sticky in pw, as bw's below: to the client, and the push stands as audited
		} else {
			bw.Write(buf.Bytes())
		}
	}
	if sideband {
		pw.Flush()
	}
	g.auditPush(r, cmds, unpack, start)
}

func capValue(caps []string, key string) (string, bool) {
	for _, c := range caps {
		if v, ok := strings.CutPrefix(c, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func (g *Gate) auditPush(r *http.Request, cmds []*command, unpack string, start time.Time) {
	var refs []map[string]any
	decision := "allow"
	reason := ""
	for _, c := range cmds {
		e := map[string]any{"ref": c.ref, "old": c.old.String(), "new": c.new.String(), "result": "ok"}
		if c.reason != "" {
			e["result"], e["reason"] = "refused", c.reason
			decision = "deny"
			if reason == "" {
				reason = c.reason
			}
		}
		if c.approval != "" {
			e["approval"] = c.approval
		}
		if len(c.protected) > 0 {
			var ps []string
			for _, t := range c.protected {
				ps = append(ps, t.path)
			}
			e["protected_paths"] = ps
		}
		refs = append(refs, e)
	}
	rec := map[string]any{"event": "push", "remote": r.RemoteAddr, "decision": decision, "refs": refs,
		"duration_ms": time.Since(start).Milliseconds()}
	if unpack != "ok" {
		rec["unpack"] = unpack
	}
	if reason != "" {
		rec["reason"] = reason
	}
	g.record(rec)
}

// checkRule applies the rules that need no objects: which refs, deletes,
// tags.
func (g *Gate) checkRule(c *command) {
	if !validRefName(c.ref) {
		c.refuse("%q is not a valid ref name", c.ref)
		return
	}
	allowed := false
	for _, p := range g.refRules {
		if matchGlob(p, c.ref) {
			allowed = true
		}
	}
	if !allowed {
		c.refuse("%s is not writable from this bottle (it may push to %s)", c.ref, strings.Join(g.refRules, ", "))
		return
	}
	if strings.HasPrefix(c.ref, "refs/tags/") && !g.cfg.Push.AllowTags {
		c.refuse("%s: pushing tags is not allowed from this bottle", c.ref)
		return
	}
	if c.new.IsZero() && !g.cfg.Push.AllowDelete {
		c.refuse("%s: deleting refs is not allowed from this bottle", c.ref)
	}
}

// allOrNothing refuses every update of a push once one is refused, and
// reports whether it did.
func allOrNothing(cmds []*command) bool {
	for _, c := range cmds {
		if c.reason != "" {
			for _, o := range cmds {
				o.refuse("not applied: the update of %s was refused and a push is all or nothing", c.ref)
			}
			return true
		}
	}
	return false
}

func refusedAny(cmds []*command) bool {
	for _, c := range cmds {
		if c.reason != "" {
			return true
		}
	}
	return false
}

// refuseConflicts refuses a push whose refs cannot all exist at once (a
// and a/b), before anything is read or written: such a batch would
// otherwise fail halfway through its ref updates.
func refuseConflicts(cmds []*command) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.ref
	}
	if err := repo.RefConflict(names); err != nil {
		for _, c := range cmds {
			c.refuse("%v: push them under names that do not nest", err)
		}
	}
}

// validRefName applies git's check-ref-format rules.
func validRefName(name string) bool {
	if !strings.HasPrefix(name, "refs/") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "@{") || strings.Contains(name, "//") || len(name) > 1024 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	for _, comp := range strings.Split(name, "/") {
		if comp == "" || strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	return true
}

// applyPush takes the push slot, indexes the pack when the push has one
// and decides the push; it returns the unpack status for the report.
func (g *Gate) applyPush(ctx context.Context, pr *pktline.Reader, cmds []*command, lim repo.IndexLimits, say func(string, ...any)) string {
	release, err := g.takePushSlot(ctx)
	if err != nil {
		for _, c := range cmds {
			c.refuse("%v", err)
		}
		return "ok"
	}
	defer release()
	needPack := false
	for _, c := range cmds {
		if !c.new.IsZero() {
			needPack = true
		}
	}
	var ix *repo.Indexed
	if needPack {
		room, why, err := g.packRoom()
		if err != nil {
			for _, c := range cmds {
				c.refuse("%v", err)
			}
			return "ok"
		}
		lim.MaxPackBytes = room
		ix, err = g.repo.IndexPack(pr.Buffered(), repo.Thin{Store: g.repo.Store(), Allow: g.lendBases}, lim)
		if err != nil {
			g.logger.Printf("push: unpacking: %v", err)
			reason := "unpacker error"
			if errors.Is(err, repo.ErrCollision) {
				// git says the same of such an object: name it in every ng.
				reason = err.Error() + ": the push was refused"
			}
			for _, c := range cmds {
				c.refuse("%s", reason)
			}
			if errors.Is(err, repo.ErrTooLarge) {
				return fmt.Sprintf("%v (%s)", err, g.limitsHint(lim, why))
			}
			return err.Error()
		}
		defer ix.Discard()
	}
	g.decideSafely(ctx, cmds, ix, say)
	return "ok"
}

// decideSafely runs decide. A panic in it (a bug that crafted objects
// reach, or one in the decider) refuses the push instead of escaping to
// net/http; the push slot is released by its holder's defer whatever
// happens: one bad push must not wedge every later one.
func (g *Gate) decideSafely(ctx context.Context, cmds []*command, ix *repo.Indexed, say func(string, ...any)) {
	defer func() {
		if p := recover(); p != nil {
			g.logger.Printf("push: internal error: %v\n%s", p, debug.Stack())
			for _, c := range cmds {
				c.reason = "internal error in the git gate (logged in the bundle); the push was not applied"
			}
		}
	}()
	g.decide(ctx, cmds, ix, say)
}

// decide checks every update against the objects and the current refs,
// asks a human when only protected paths stand in the way, and applies the
// push all or nothing.
func (g *Gate) decide(ctx context.Context, cmds []*command, ix *repo.Indexed, say func(string, ...any)) {
	if err := g.repo.Refresh(); err != nil {
		for _, c := range cmds {
			c.refuse("internal error: %v", err)
		}
		return
	}
	st := g.repo.Store().With(ix)
	refs, err := g.repo.Refs(st)
	if err != nil {
		for _, c := range cmds {
			c.refuse("internal error: %v", err)
		}
		return
	}
	current := map[string]repo.Hash{}
	var tips []repo.Hash
	for _, ref := range refs {
		current[ref.Name] = ref.Hash
		tips = append(tips, ref.Hash)
	}
	shallow, _ := g.repo.Shallow()
	// First what each update uses without sending it, which the bottle
	// must have been given; only then anything else about the objects.
	seen := map[repo.Hash]bool{}
	used := map[*command][]repo.Hash{}
	var all []repo.Hash
	for _, c := range cmds {
		if c.reason != "" {
			continue
		}
		if current[c.ref] != c.old {
			c.refuse("%s changed since this push started (fetch and try again)", c.ref)
			continue
		}
		if c.new.IsZero() {
			continue
		}
		hs, err := usedNotSent(st, ix, c.new, seen)
		if err != nil {
			c.refuse("%v", err)
			continue
		}
		used[c], all = hs, append(all, hs...)
	}
	missing, err := g.notGiven(all)
	if err != nil {
		for _, c := range cmds {
			c.refuse("checking the pushed objects: %v", err)
		}
	}
	for _, c := range cmds {
		hs, ok := used[c]
		if !ok || c.reason != "" {
			continue
		}
		for _, h := range hs {
			if missing[h] {
				c.refuse("%v", neverGiven(h))
			}
		}
		if c.reason == "" {
			g.checkObjects(c, st, ix, shallow, tips)
		}
	}
	refused := false
	for _, c := range cmds {
		if c.reason != "" && len(c.protected) == 0 {
			refused = true
		}
	}
	if !refused {
		for _, c := range cmds {
			if len(c.protected) == 0 {
				continue
			}
			if !g.cfg.Approvals.Enabled || g.decider == nil {
				continue
			}
			c.reason = ""
			g.askHuman(ctx, c, say)
			if c.reason != "" {
				break
			}
		}
	}
	if allOrNothing(cmds) {
		return
	}
	pack := ix.PackName()
	if err := g.repo.Accept(ix); err != nil {
		g.logger.Printf("push: %v", err)
		for _, c := range cmds {
			c.refuse("storing the pushed objects failed: %v", err)
		}
		return
	}
	if pack != "" {
		if err := g.recordPushed(pack); err != nil {
			g.logger.Printf("push: counting %s against the quota: %v", pack, err)
		}
	}
	var ups []repo.RefUpdate
	for _, c := range cmds {
		ups = append(ups, repo.RefUpdate{Name: c.ref, Old: c.old, New: c.new})
	}
	if err := g.repo.UpdateRefs(ups); err != nil {
		for _, c := range cmds {
			c.refuse("%v", err)
		}
	}
}

// checkObjects applies the rules on what an update's objects are; every
// object it uses is one the push sent or one the bottle was given.
func (g *Gate) checkObjects(c *command, st *repo.Store, ix *repo.Indexed, shallow map[repo.Hash]bool, tips []repo.Hash) {
	t, _, err := st.Read(c.new)
	if err != nil {
		c.refuse("reading the pushed objects: %v", err)
		return
	}
	if strings.HasPrefix(c.ref, "refs/heads/") && t != repo.Commit {
		c.refuse("%s must point to a commit, not a %s", c.ref, t)
		return
	}
	w := repo.NewWalker(st, shallow)
	en, err := w.Enumerate(repo.EnumOptions{Wants: []repo.Hash{c.new}, Haves: tips, CheckBlobs: true})
	if err != nil {
		c.refuse("reading the pushed objects: %v", err)
		return
	}
	for _, o := range en.Objects {
		pt, sent := ix.Types[o.Hash]
		if !sent {
			continue
		}
		if pt != o.Type {
			c.refuse("object %s is a %s but is used as a %s", o.Hash, pt, o.Type)
			return
		}
		if o.Type == repo.Tree {
			if err := checkTreeNames(st, o.Hash); err != nil {
				c.refuse("%v", err)
				return
			}
		}
	}
	if !c.old.IsZero() {
		ff, err := w.IsAncestor(c.old, c.new)
		if err != nil {
			c.refuse("checking fast-forward: %v", err)
			return
		}
		isTag := strings.HasPrefix(c.ref, "refs/tags/")
		if (!ff || isTag) && !g.cfg.Push.AllowForce {
			if isTag {
				c.refuse("%s already exists: moving a tag is not allowed from this bottle", c.ref)
			} else {
				c.refuse("%s: non-fast-forward update (force push) is not allowed from this bottle", c.ref)
			}
			return
		}
	}
	touches, err := g.protectedTouches(st, w, c.new, en.Commits)
	if err != nil {
		c.refuse("checking protected paths: %v", err)
		return
	}
	if len(touches) > 0 {
		c.protected = touches
		c.detail, c.scope = g.describeTouches(st, w, c.new, touches, len(en.Commits))
		c.refuse("%s", touchesText(c.ref, touches))
	}
}

func more(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n)
}

func (g *Gate) askHuman(ctx context.Context, c *command, say func(string, ...any)) {
	timeout := time.Duration(g.cfg.Approvals.Timeout)
	var paths []string
	for _, t := range c.protected {
		paths = append(paths, t.path)
	}
	sort.Strings(paths)
	paths = dedup(paths)
	say("push to %s touches protected paths (%s): waiting up to %s for a human to approve it", c.ref, strings.Join(paths, ", "), timeout)
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := g.decider.Decide(actx, approval.Request{Kind: approval.Push, Subject: c.ref, Scope: c.scope, Detail: c.detail})
	c.approval = string(d)
	switch {
	case err == nil && d.Allowed():
		say("push to %s approved", c.ref)
	case errors.Is(err, approval.ErrNoDecision) || actx.Err() != nil:
		c.approval = "timeout"
		c.refuse("%s touches protected paths (%s) and no one approved it: no decision in time", c.ref, strings.Join(paths, ", "))
	case err != nil:
		c.approval = string(approval.Deny)
		c.refuse("%s touches protected paths (%s) and could not be held for approval: %v", c.ref, strings.Join(paths, ", "), err)
	default:
		if c.approval == "" {
			c.approval = string(approval.Deny)
		}
		c.refuse("%s touches protected paths (%s) and a human denied it", c.ref, strings.Join(paths, ", "))
	}
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// protectedTouches lists the protected paths a ref update to tip changes:
// those each new commit changes, where a commit changes a path when its
// version differs from that of every parent (what a combined diff shows; a
// root commit changes every path it has), and then those where tip differs
// from where the bottle started, so that history cannot bring back what
// the new commits do not show (an old commit revived, a branch merged).
func (g *Gate) protectedTouches(st *repo.Store, w *repo.Walker, tip repo.Hash, commits []repo.Hash) ([]touch, error) {
	if len(g.protected) == 0 {
		return nil, nil
	}
	var out []touch
	seen := map[string]bool{}
	for _, h := range commits {
		ci, err := w.CommitInfo(h)
		if err != nil {
			return nil, err
		}
		var parents []repo.Hash
		for _, p := range ci.Parents {
			pci, err := w.CommitInfo(p)
			if err != nil {
				return nil, err
			}
			parents = append(parents, pci.Tree)
		}
		if len(parents) == 0 {
			parents = []repo.Hash{repo.Zero}
		}
		changed, err := changedVersus(st, ci.Tree, parents, g.protected)
		if err != nil {
			return nil, err
		}
		for _, p := range sortedKeys(changed) {
			out = append(out, touch{commit: h, path: p})
			seen[p] = true
		}
	}
	bases, err := g.startBases(st, w)
	if err != nil {
		return nil, err
	}
	since, err := g.tipTouches(st, w, tip, bases)
	if err != nil {
		return nil, err
	}
	for _, t := range since {
		if !seen[t.path] {
			out = append(out, t)
		}
	}
	return out, nil
}

func treeEntries(st *repo.Store, h repo.Hash) (map[string]repo.TreeEntry, error) {
	m := map[string]repo.TreeEntry{}
	if h.IsZero() {
		return m, nil
	}
	data, err := st.ReadType(h, repo.Tree)
	if err != nil {
		return nil, err
	}
	it := repo.NewTreeIter(data)
	for {
		e, ok := it.Next()
		if !ok {
			break
		}
		m[string(e.Name)] = e
	}
	return m, it.Err()
}

// diffTrees records the protected paths whose entries differ between trees
// a and b (Zero is the empty tree), descending only into folders a
// protected glob could reach.
func diffTrees(st *repo.Store, a, b repo.Hash, prefix string, m pathMatcher, out map[string]bool) error {
	if a == b {
		return nil
	}
	ea, err := treeEntries(st, a)
	if err != nil {
		return err
	}
	eb, err := treeEntries(st, b)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for n := range ea {
		names[n] = true
	}
	for n := range eb {
		names[n] = true
	}
	for n := range names {
		x, inA := ea[n]
		y, inB := eb[n]
		if inA && inB && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		p := path.Join(prefix, n)
		xt, yt := inA && x.IsTree(), inB && y.IsTree()
		if (inA && !xt) || (inB && !yt) {
			if m.match(p) {
				out[p] = true
			}
		}
		if (xt || yt) && m.below(p) {
			sa, sb := repo.Zero, repo.Zero
			if xt {
				sa = x.Hash
			}
			if yt {
				sb = y.Hash
			}
			if err := diffTrees(st, sa, sb, p, m, out); err != nil {
				return err
			}
		}
	}
	return nil
}
