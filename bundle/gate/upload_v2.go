package gate

import (
	"bufio"
	"io"
	"net/http"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/pktline"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// v2Request is a protocol v2 command request.
type v2Request struct {
	command string
	caps    []string
	args    []string
}

func parseV2(r io.Reader) (*v2Request, error) {
	pr := pktline.NewReader(r)
	req := &v2Request{}
	inArgs := false
	for {
		k, p, err := pr.ReadLine()
		if err == io.EOF {
			if req.command == "" && !inArgs {
				return req, nil // an empty request: nothing to do
			}
			return nil, badRequest("request ends before its flush packet")
		}
		if err != nil {
			return nil, err
		}
		switch k {
		case pktline.Flush:
			return req, nil
		case pktline.Delim:
			if inArgs {
				return nil, badRequest("unexpected delimiter in the arguments")
			}
			inArgs = true
			continue
		case pktline.ResponseEnd:
			return nil, badRequest("unexpected response-end packet")
		}
		line := string(p)
		switch {
		case inArgs:
			req.args = append(req.args, line)
		case req.command == "":
			c, ok := strings.CutPrefix(line, "command=")
			if !ok {
				return nil, badRequest("protocol v2 request must start with command=, got %q", truncate(line))
			}
			req.command = c
		default:
			req.caps = append(req.caps, line)
		}
	}
}

func (g *Gate) uploadPackV2(w http.ResponseWriter, r *http.Request, body io.Reader) {
	req, err := parseV2(body)
	if err != nil {
		g.requestFailed(w, err)
		return
	}
	for _, c := range req.caps {
		if v, ok := strings.CutPrefix(c, "object-format="); ok && v != "sha1" {
			g.requestFailed(w, badRequest("object format %q is not supported (sha1 only)", v))
			return
		}
	}
	switch req.command {
	case "":
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	case "ls-refs":
		g.lsRefs(w, req)
	case "fetch":
		g.fetchV2(w, r, req)
	default:
		g.requestFailed(w, badRequest("unknown command %q", req.command))
	}
}

func (g *Gate) lsRefs(w http.ResponseWriter, req *v2Request) {
	var symrefs, peel, unborn bool
	var prefixes []string
	for _, a := range req.args {
		switch {
		case a == "symrefs":
			symrefs = true
		case a == "peel":
			peel = true
		case a == "unborn":
			unborn = true
		case strings.HasPrefix(a, "ref-prefix "):
			prefixes = append(prefixes, a[len("ref-prefix "):])
		default:
			g.requestFailed(w, badRequest("unexpected ls-refs argument %q", truncate(a)))
			return
		}
	}
	st := g.repo.Store()
	refs, err := g.repo.Refs(st)
	if err != nil {
		g.internalError(w, err)
		return
	}
	head, err := g.repo.Head()
	if err != nil {
		g.internalError(w, err)
		return
	}
	wanted := func(name string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	noCache(w)
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	bw := bufio.NewWriter(w)
	pw := pktline.NewWriter(bw)
	if wanted("HEAD") {
		line := ""
		switch {
		case !head.Hash.IsZero():
			line = head.Hash.String() + " HEAD"
		case head.Symbolic && unborn:
			line = "unborn HEAD"
		}
		if line != "" {
			if symrefs && head.Symbolic {
				line += " symref-target:" + head.Target
			}
			pw.Line(line)
		}
	}
	for _, ref := range refs {
		if !wanted(ref.Name) {
			continue
		}
		line := ref.Hash.String() + " " + ref.Name
		if peel && !ref.Peeled.IsZero() {
			line += " peeled:" + ref.Peeled.String()
		}
		pw.Line(line)
	}
	pw.Flush()
	bw.Flush()
}

func (g *Gate) fetchV2(w http.ResponseWriter, r *http.Request, req *v2Request) {
	u := &uploadRequest{v2: true, clientShallow: map[repo.Hash]bool{}, sideband: pktline.MaxLen}
	for _, a := range req.args {
		if ok, err := u.parseArg(a); ok {
			if err != nil {
				g.requestFailed(w, err)
				return
			}
			continue
		}
		switch {
		case strings.HasPrefix(a, "want "):
			h, err := repo.ParseHash(a[len("want "):])
			if err != nil {
				g.requestFailed(w, badRequest("protocol error: %v", err))
				return
			}
			u.wants = append(u.wants, h)
		case strings.HasPrefix(a, "have "):
			h, err := repo.ParseHash(a[len("have "):])
			if err != nil {
				g.requestFailed(w, badRequest("protocol error: %v", err))
				return
			}
			u.haves = append(u.haves, h)
			u.sawHaves = true
		case a == "thin-pack":
			u.thin = true
		case a == "ofs-delta":
			u.ofsDelta = true
		case a == "no-progress":
			u.noProgress = true
		case a == "include-tag":
			u.includeTag = true
		case a == "done":
			u.done = true
		case a == "wait-for-done":
			u.waitForDone = true
		default:
			g.requestFailed(w, badRequest("unexpected fetch argument %q", truncate(a)))
			return
		}
	}
	noCache(w)
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	pw := pktline.NewWriter(bw)
	if len(u.wants) == 0 && !u.waitForDone {
		return
	}
	s, err := g.newSession(r, u)
	if err != nil {
		s.fail(pw, err)
		return
	}
	if u.sawHaves && !u.done {
		pw.Line("acknowledgments")
		for _, h := range u.haves {
			if s.addHave(h) {
				pw.Linef("ACK %s", h)
			}
		}
		if len(s.common) == 0 {
			pw.Line("NAK")
		}
		if u.waitForDone || !s.okToGiveUp() {
			pw.Flush()
			return
		}
		pw.Line("ready")
		pw.Delim()
	} else {
		for _, h := range u.haves {
			s.addHave(h)
		}
	}
	serverShallow, _ := g.repo.Shallow()
	if u.deepening() || len(u.clientShallow) > 0 || len(serverShallow) > 0 {
		var lines []string
		if u.deepening() {
			if err := s.deepen(); err != nil {
				s.fail(pw, err)
				return
			}
		} else if len(serverShallow) > 0 {
			// A shallow repository tells the client where its history stops.
			u.depth = 1 << 30
			if err := s.deepen(); err != nil {
				s.fail(pw, err)
				return
			}
			u.depth = 0
		} else {
			s.walker.SetGrafts(u.clientShallow)
		}
		if s.deep != nil {
			for _, h := range s.deep.Shallow {
				lines = append(lines, "shallow "+h.String())
			}
			for _, h := range s.deep.Unshallow {
				lines = append(lines, "unshallow "+h.String())
			}
		}
		pw.Line("shallow-info")
		for _, l := range lines {
			pw.Line(l)
		}
		pw.Delim()
	}
	pw.Line("packfile")
	s.sendPack(pw, bw)
}
