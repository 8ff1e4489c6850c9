package gate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/pktline"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

const uploadCapsV0 = "multi_ack_detailed no-done side-band side-band-64k thin-pack ofs-delta shallow deepen-since deepen-not deepen-relative no-progress include-tag allow-tip-sha1-in-want allow-reachable-sha1-in-want filter object-format=sha1 agent=" + agentName

const receiveCaps = "report-status delete-refs side-band-64k quiet atomic ofs-delta object-format=sha1 agent=" + agentName

// maxUploadRequest bounds the wants and haves of one fetch request.
const maxUploadRequest = 32 << 20

func (g *Gate) advertiseV0(w http.ResponseWriter, svc string, v1 bool) error {
	bw := bufio.NewWriter(w)
	pw := pktline.NewWriter(bw)
	pw.Linef("# service=%s", svc)
	pw.Flush()
	if v1 {
		pw.Line("version 1")
	}
	st := g.repo.Store()
	refs, err := g.repo.Refs(st)
	if err != nil {
		return err
	}
	caps := receiveCaps
	first := true
	line := func(h repo.Hash, name string) {
		if first {
			pw.Write([]byte(h.String() + " " + name + "\x00" + caps + "\n"))
			first = false
			return
		}
		pw.Linef("%s %s", h, name)
	}
	if svc == "git-upload-pack" {
		caps = uploadCapsV0
		head, err := g.repo.Head()
		if err != nil {
			return err
		}
		if head.Symbolic {
			caps += " symref=HEAD:" + head.Target
		}
		if !head.Hash.IsZero() {
			line(head.Hash, "HEAD")
		}
	}
	for _, ref := range refs {
		line(ref.Hash, ref.Name)
		if svc == "git-upload-pack" && !ref.Peeled.IsZero() {
			pw.Linef("%s %s^{}", ref.Peeled, ref.Name)
		}
	}
	if first {
		line(repo.Zero, "capabilities^{}")
	}
	if svc == "git-upload-pack" {
		shallow, err := g.repo.Shallow()
		if err != nil {
			return err
		}
		for _, h := range sortedSet(shallow) {
			pw.Linef("shallow %s", h)
		}
	}
	pw.Flush()
	if err := pw.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

func (g *Gate) advertiseV2(w http.ResponseWriter) {
	bw := bufio.NewWriter(w)
	pw := pktline.NewWriter(bw)
	pw.Line("version 2")
	pw.Line("agent=" + agentName)
	pw.Line("ls-refs=unborn")
	pw.Line("fetch=shallow wait-for-done filter")
	pw.Line("object-format=sha1")
	pw.Flush()
	bw.Flush()
}

// uploadRequest is a parsed fetch request, v0 or v2.
type uploadRequest struct {
	v2               bool
	wants            []repo.Hash
	haves            []repo.Hash
	clientShallow    map[repo.Hash]bool
	depth            int
	relative         bool
	since            int64
	deepenNot        []string
	noBlobs          bool
	filter           string
	done, sawHaves   bool
	haveSection      bool // v0: the request went on after the wants' flush
	ofsDelta, thin   bool
	sideband         int // largest side-band packet, 0 without side-band
	noProgress       bool
	includeTag       bool
	multiAck, noDone bool
	waitForDone      bool
	flushTerminated  bool // v0: the haves ended with a flush, not done
}

func (u *uploadRequest) deepening() bool {
	return u.depth > 0 || u.since > 0 || len(u.deepenNot) > 0
}

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{fmt.Sprintf(format, args...)}
}

// parseArg handles the arguments v0 and v2 share.
func (u *uploadRequest) parseArg(line string) (bool, error) {
	var err error
	switch {
	case strings.HasPrefix(line, "shallow "):
		h, err := repo.ParseHash(line[len("shallow "):])
		if err != nil {
			return true, badRequest("invalid shallow line: %v", err)
		}
		u.clientShallow[h] = true
	case strings.HasPrefix(line, "deepen "):
		u.depth, err = strconv.Atoi(line[len("deepen "):])
		if err != nil || u.depth <= 0 {
			return true, badRequest("invalid deepen: %s", line)
		}
	case strings.HasPrefix(line, "deepen-since "):
		u.since, err = strconv.ParseInt(line[len("deepen-since "):], 10, 64)
		if err != nil || u.since <= 0 {
			return true, badRequest("invalid deepen-since: %s", line)
		}
	case strings.HasPrefix(line, "deepen-not "):
		u.deepenNot = append(u.deepenNot, line[len("deepen-not "):])
	case line == "deepen-relative":
		u.relative = true
	case strings.HasPrefix(line, "filter "):
		spec := line[len("filter "):]
		if spec != "blob:none" && spec != "blob:limit=0" {
			return true, badRequest("filter %q is not supported by the git gate (only blob:none)", spec)
		}
		u.noBlobs, u.filter = true, spec
	default:
		return false, nil
	}
	return true, nil
}

func hasCap(caps []string, c string) bool {
	for _, x := range caps {
		if x == c {
			return true
		}
	}
	return false
}

func parseUploadV0(r io.Reader) (*uploadRequest, error) {
	u := &uploadRequest{clientShallow: map[repo.Hash]bool{}}
	pr := pktline.NewReader(r)
	for {
		k, p, err := pr.ReadLine()
		if err == io.EOF {
			return nil, badRequest("request ends before its flush packet")
		}
		if err != nil {
			return nil, err
		}
		if k == pktline.Flush {
			break
		}
		if k != pktline.Data {
			return nil, badRequest("unexpected special packet in the wants")
		}
		line := string(p)
		if ok, err := u.parseArg(line); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "want ")
		if !ok || len(rest) < 40 {
			return nil, badRequest("protocol error: expected want, got %q", truncate(line))
		}
		h, err := repo.ParseHash(rest[:40])
		if err != nil {
			return nil, badRequest("protocol error: %v", err)
		}
		if len(u.wants) == 0 {
			caps := strings.Fields(rest[40:])
			u.multiAck = hasCap(caps, "multi_ack_detailed")
			if !u.multiAck && hasCap(caps, "multi_ack") {
				return nil, badRequest("multi_ack is not offered: use multi_ack_detailed")
			}
			u.noDone = hasCap(caps, "no-done")
			u.thin = hasCap(caps, "thin-pack")
			u.ofsDelta = hasCap(caps, "ofs-delta")
			u.noProgress = hasCap(caps, "no-progress")
			u.includeTag = hasCap(caps, "include-tag")
			u.relative = u.relative || hasCap(caps, "deepen-relative")
			switch {
			case hasCap(caps, "side-band-64k"):
				u.sideband = pktline.MaxLen
			case hasCap(caps, "side-band"):
				u.sideband = 1000
			}
		}
		u.wants = append(u.wants, h)
	}
	for {
		k, p, err := pr.ReadLine()
		if err == io.EOF {
			return u, nil
		}
		if err != nil {
			return nil, err
		}
		u.haveSection = true
		if k == pktline.Flush {
			u.flushTerminated = true
			return u, nil
		}
		line := string(p)
		if line == "done" {
			u.done = true
			return u, nil
		}
		rest, ok := strings.CutPrefix(line, "have ")
		if !ok {
			return nil, badRequest("protocol error: expected have or done, got %q", truncate(line))
		}
		h, err := repo.ParseHash(rest)
		if err != nil {
			return nil, badRequest("protocol error: %v", err)
		}
		u.haves = append(u.haves, h)
		u.sawHaves = true
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func (g *Gate) uploadPack(w http.ResponseWriter, r *http.Request, body io.Reader) {
	body = io.LimitReader(body, maxUploadRequest)
	if err := g.repo.Refresh(); err != nil {
		g.internalError(w, err)
		return
	}
	if protocolVersion(r) == 2 {
		g.uploadPackV2(w, r, body)
		return
	}
	u, err := parseUploadV0(body)
	if err != nil {
		g.requestFailed(w, err)
		return
	}
	noCache(w)
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	pw := pktline.NewWriter(bw)
	s, err := g.newSession(r, u)
	if err != nil {
		s.fail(pw, err)
		return
	}
	if u.deepening() {
		if err := s.deepen(); err != nil {
			s.fail(pw, err)
			return
		}
		for _, h := range s.deep.Shallow {
			pw.Linef("shallow %s", h)
		}
		for _, h := range s.deep.Unshallow {
			pw.Linef("unshallow %s", h)
		}
		pw.Flush()
	} else {
		s.walker.SetGrafts(u.clientShallow)
	}
	if !u.haveSection {
		return // a stateless client's first round: the shallow list only
	}
	// Negotiation, as upload-pack does it with multi_ack_detailed.
	var last repo.Hash
	gotCommon, gotOther, sentReady := false, false, false
	for _, h := range u.haves {
		if s.addHave(h) {
			gotCommon, last = true, h
			if u.multiAck {
				pw.Linef("ACK %s common", h)
			} else if len(s.common) == 1 {
				pw.Linef("ACK %s", h)
			}
			continue
		}
		gotOther = true
		if u.multiAck && !sentReady && s.okToGiveUp() {
			sentReady = true
			pw.Linef("ACK %s ready", h)
		}
	}
	if u.flushTerminated {
		if u.multiAck && gotCommon && !gotOther && !sentReady && s.okToGiveUp() {
			sentReady = true
			pw.Linef("ACK %s ready", last)
		}
		if len(s.common) == 0 || u.multiAck {
			pw.Line("NAK")
		}
		if !(u.noDone && sentReady) {
			return // the client sends another round
		}
		pw.Linef("ACK %s", last)
	} else if u.done {
		if len(s.common) > 0 {
			if u.multiAck {
				pw.Linef("ACK %s", last)
			}
		} else {
			pw.Line("NAK")
		}
	}
	if len(u.wants) == 0 {
		return
	}
	s.sendPack(pw, bw)
}

// requestFailed answers a request that could not be parsed.
func (g *Gate) requestFailed(w http.ResponseWriter, err error) {
	var re *requestError
	if errors.As(err, &re) || errors.Is(err, pktline.ErrMalformed) {
		http.Error(w, "bad git request: "+err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
}

// session is one fetch's state: the wants checked, the haves in common,
// the walker.
type session struct {
	g      *Gate
	r      *http.Request
	u      *uploadRequest
	store  *repo.Store
	walker *repo.Walker
	refs   []repo.Ref
	start  time.Time

	common     []repo.Hash
	given      map[repo.Hash]bool // the haves the refs reach
	theyHave   map[repo.Hash]bool
	oldestHave int64
	deep       *repo.DeepenResult
	giveUp     int // 0 unknown, 1 yes, -1 no
}

func (g *Gate) newSession(r *http.Request, u *uploadRequest) (*session, error) {
	s := &session{g: g, r: r, u: u, store: g.repo.Store(), theyHave: map[repo.Hash]bool{}, start: time.Now()}
	serverShallow, err := g.repo.Shallow()
	if err != nil {
		return s, err
	}
	s.walker = repo.NewWalker(s.store, serverShallow)
	if s.refs, err = g.repo.Refs(s.store); err != nil {
		return s, err
	}
	if err := s.checkWants(); err != nil {
		return s, err
	}
	return s, s.filterHaves()
}

// checkWants makes sure every want is reachable from a ref: the repository
// can hold objects it was never meant to give (a local clone hard-links the
// user's whole object store, unreachable objects included).
func (s *session) checkWants() error {
	tipList := s.g.tips(s.refs)
	tips := map[repo.Hash]bool{}
	for _, h := range tipList {
		tips[h] = true
	}
	var other []repo.Hash
	for _, h := range s.u.wants {
		if !s.store.Has(h) {
			return &notOurRef{h}
		}
		if !tips[h] {
			other = append(other, h)
		}
	}
	if len(other) == 0 {
		return nil
	}
	missing, err := s.walker.Reachable(other, tipList)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &notOurRef{missing[0]}
	}
	return nil
}

type notOurRef struct{ h repo.Hash }

func (e *notOurRef) Error() string { return "upload-pack: not our ref " + e.h.String() }

// fail reports an error to the client as git does (an ERR packet, which
// git prints as "remote error: ...") and to the audit.
func (s *session) fail(pw *pktline.Writer, err error) {
	var re *requestError
	var nr *notOurRef
	if !errors.As(err, &re) && !errors.As(err, &nr) {
		s.g.logger.Printf("fetch: %v", err)
	}
	pw.Linef("ERR %s", err)
	s.audit("deny", err.Error(), nil)
}

func (s *session) audit(decision, reason string, st *repo.PackStats) {
	rec := map[string]any{"event": "fetch", "remote": s.r.RemoteAddr, "decision": decision,
		"protocol": protoName(s.u.v2), "wants": len(s.u.wants), "haves": len(s.u.haves)}
	byHash := map[repo.Hash][]string{}
	for _, ref := range s.refs {
		byHash[ref.Hash] = append(byHash[ref.Hash], ref.Name)
	}
	var names []string
	for _, h := range s.u.wants {
		names = append(names, byHash[h]...)
	}
	if len(names) > 50 {
		rec["refs_total"] = len(names)
		names = names[:50]
	}
	rec["refs"] = names
	if s.u.depth > 0 {
		rec["depth"] = s.u.depth
	}
	if s.u.filter != "" {
		rec["filter"] = s.u.filter
	}
	if reason != "" {
		rec["reason"] = reason
	}
	if st != nil {
		rec["objects"] = st.Objects
		rec["bytes"] = st.Bytes
		rec["duration_ms"] = time.Since(s.start).Milliseconds()
	}
	s.g.record(rec)
}

func protoName(v2 bool) string {
	if v2 {
		return "v2"
	}
	return "v0"
}

// filterHaves finds the haves the client may be told the gate has:
// commits the refs reach. Acknowledging any other stored object would
// tell the client that it exists (the store holds objects the bottle was
// never given).
func (s *session) filterHaves() error {
	s.given = map[repo.Hash]bool{}
	var stored []repo.Hash
	for _, h := range s.u.haves {
		if s.store.Has(h) {
			stored = append(stored, h)
		}
	}
	if len(stored) == 0 {
		return nil
	}
	shallow, err := s.g.repo.Shallow()
	if err != nil {
		return err
	}
	missing, err := repo.NewWalker(s.store, shallow).ReachableCommits(stored, s.g.tips(s.refs))
	if err != nil {
		return err
	}
	notGiven := map[repo.Hash]bool{}
	for _, h := range missing {
		notGiven[h] = true
	}
	for _, h := range stored {
		if !notGiven[h] {
			s.given[h] = true
		}
	}
	return nil
}

// addHave records a have line and reports whether the client may be told
// we have the object.
func (s *session) addHave(h repo.Hash) bool {
	if !s.given[h] {
		return false
	}
	if !s.theyHave[h] {
		s.theyHave[h] = true
	}
	if ci, err := s.walker.CommitInfo(h); err == nil {
		if s.oldestHave == 0 || ci.Time < s.oldestHave {
			s.oldestHave = ci.Time
		}
		for _, p := range ci.Parents {
			s.theyHave[p] = true
		}
	}
	s.common = append(s.common, h)
	s.giveUp = 0
	return true
}

// okToGiveUp reports whether every wanted commit reaches something the
// client has, looking no further back than its oldest have: then a pack
// can be cut well and negotiation may stop.
func (s *session) okToGiveUp() bool {
	if len(s.common) == 0 {
		return false
	}
	if s.giveUp != 0 {
		return s.giveUp > 0
	}
	reaches := map[repo.Hash]bool{}
	var visit func(h repo.Hash, depth int) bool
	visit = func(h repo.Hash, depth int) bool {
		if s.theyHave[h] {
			return true
		}
		if v, ok := reaches[h]; ok || depth > 10000 {
			return v
		}
		reaches[h] = false
		ci, err := s.walker.CommitInfo(h)
		if err != nil || ci.Time < s.oldestHave {
			return false
		}
		for _, p := range ci.Parents {
			if visit(p, depth+1) {
				reaches[h] = true
				return true
			}
		}
		return false
	}
	for _, h := range s.u.wants {
		peeled, _, err := s.store.Peel(h)
		if err != nil {
			s.giveUp = -1
			return false
		}
		if t, _, err := s.store.Read(peeled); err != nil || t != repo.Commit {
			continue // a tree or blob want says nothing about history
		}
		if !visit(peeled, 0) {
			s.giveUp = -1
			return false
		}
	}
	s.giveUp = 1
	return true
}

func (s *session) deepen() error {
	var wants []repo.Hash
	for _, h := range s.u.wants {
		p, _, err := s.store.Peel(h)
		if err != nil {
			return err
		}
		if t, _, err := s.store.Read(p); err == nil && t == repo.Commit {
			wants = append(wants, p)
		}
	}
	var not []repo.Hash
	for _, name := range s.u.deepenNot {
		h, ok := s.resolveRefDWIM(name)
		if !ok {
			return badRequest("git upload-pack: deepen-not is not a ref: %s", name)
		}
		p, _, err := s.store.Peel(h)
		if err != nil {
			return err
		}
		not = append(not, p)
	}
	d, err := s.walker.Deepen(repo.DeepenOptions{Wants: wants, ClientShallow: s.u.clientShallow,
		Depth: s.u.depth, Relative: s.u.relative, Since: s.u.since, Not: not})
	if err != nil {
		if strings.HasPrefix(err.Error(), "no commits selected") {
			return badRequest("%v", err)
		}
		return err
	}
	s.deep = d
	s.walker.SetGrafts(d.Grafts)
	return nil
}

// resolveRefDWIM resolves a short ref name the way git's rev-parse rules do.
func (s *session) resolveRefDWIM(name string) (repo.Hash, bool) {
	for _, f := range []string{"%s", "refs/%s", "refs/tags/%s", "refs/heads/%s", "refs/remotes/%s", "refs/remotes/%s/HEAD"} {
		full := fmt.Sprintf(f, name)
		for _, ref := range s.refs {
			if ref.Name == full {
				return ref.Hash, true
			}
		}
	}
	return repo.Zero, false
}

// sendPack enumerates the objects and streams the pack, on side-band 1
// when the client asked for side-band.
func (s *session) sendPack(pw *pktline.Writer, bw *bufio.Writer) {
	select {
	case s.g.packs <- struct{}{}:
		defer func() { <-s.g.packs }()
	case <-s.r.Context().Done():
		return
	}
	var progress = io.Discard
	var data io.Writer = bw
	if s.u.sideband > 0 {
		data = pw.Band(1, s.u.sideband)
		if !s.u.noProgress {
			progress = pw.Band(2, s.u.sideband)
		}
	}
	fatal := func(err error) {
		s.g.logger.Printf("fetch: %v", err)
		if s.u.sideband > 0 {
			fmt.Fprintf(pw.Band(3, s.u.sideband), "git gate: %v\n", err)
		}
		s.audit("error", err.Error(), nil)
	}
	wants := append([]repo.Hash(nil), s.u.wants...)
	var edges []repo.Hash
	if s.deep != nil {
		wants = append(wants, s.deep.ExtraWants...)
		edges = s.deep.Edges
	}
	en, err := s.walker.Enumerate(repo.EnumOptions{Wants: wants, Haves: s.common, Edges: edges, NoBlobs: s.u.noBlobs})
	if err != nil {
		fatal(err)
		return
	}
	objs := en.Objects
	if s.u.includeTag {
		objs = s.includeTags(en, objs)
	}
	fmt.Fprintf(progress, "Enumerating objects: %d, done.\n", len(objs))
	st, err := s.store.WritePack(data, objs, repo.PackOptions{OfsDelta: s.u.ofsDelta, Thin: s.u.thin, Has: en.Has})
	if err != nil {
		fatal(err)
		return
	}
	fmt.Fprintf(progress, "Total %d (delta %d), reused %d (delta %d)\n", st.Objects, st.Deltas, st.Reused, st.Deltas)
	if s.u.sideband > 0 {
		pw.Flush()
	}
	if err := pw.Err(); err != nil {
		s.audit("error", "client went away: "+err.Error(), &st)
		return
	}
	s.audit("allow", "", &st)
}

// includeTags adds annotated tags that point into the pack (include-tag).
func (s *session) includeTags(en *repo.Enumeration, objs []repo.Object) []repo.Object {
	in := make(map[repo.Hash]bool, len(objs))
	for _, o := range objs {
		in[o.Hash] = true
	}
	for _, ref := range s.refs {
		if !strings.HasPrefix(ref.Name, "refs/tags/") || ref.Peeled.IsZero() || !in[ref.Peeled] {
			continue
		}
		h := ref.Hash
		for i := 0; i < 16 && !in[h] && !en.Has(h); i++ {
			t, data, err := s.store.Read(h)
			if err != nil || t != repo.Tag {
				break
			}
			objs = append(objs, repo.Object{Hash: h, Type: repo.Tag})
			in[h] = true
			ti, err := repo.ParseTag(data)
			if err != nil {
				break
			}
			h = ti.Object
		}
	}
	return objs
}

func sortedSet(m map[repo.Hash]bool) []repo.Hash {
	var out []repo.Hash
	for h := range m {
		out = append(out, h)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].String() < out[j-1].String(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
