package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strings"
)

// redactedMarker stands for a secret value in what an upstream sends back
// when the secret has no placeholder the agent knows.
const redactedMarker = "[redacted by docker bottle]"

// redactor replaces the real values of one host's secrets, wherever an
// upstream echoes them in a response (headers, body, trailers), with what
// the agent sent: the secret's placeholder, or redactedMarker.
type redactor struct {
	pairs   []redaction // longest value first: at one position the longest match wins
	maxLen  int
	sameLen bool // every replacement is as long as its value: body lengths hold

	// A value and its encoded forms make tens of strings, too many to look
	// for one by one (a pass over the input each). Those of prefixLen
	// bytes or more are found in one pass: filter has a bit set for the
	// hash of each one's first prefixLen bytes, byPrefix lists them by those
	// bytes (longest first). The shorter ones (values only) are looked for
	// one by one.
	short    []int // indexes in pairs
	filter   *[1 << 16 / 64]uint64
	byPrefix map[uint32][]int
}

// prefixLen is how many leading bytes of a value the one-pass search hashes.
const prefixLen = 4

func prefixHash(k uint32) uint32 { return (k * 0x9e3779b1) >> 16 }

type redaction struct {
	value, repl []byte
}

// newRedactor returns nil when there is nothing to redact. The values come
// first, then their encoded forms (secretForms), so that where a form of one
// value is another value, the value's own replacement wins.
func newRedactor(ss []secret) *redactor {
	r := &redactor{sameLen: true}
	seen := map[string]bool{}
	add := func(value, repl string) {
		if value == "" || seen[value] {
			return
		}
		seen[value] = true
		r.pairs = append(r.pairs, redaction{[]byte(value), []byte(repl)})
		r.maxLen = max(r.maxLen, len(value))
		r.sameLen = r.sameLen && len(repl) == len(value)
	}
	repl := func(s secret) string {
		if s.Placeholder == "" {
			return redactedMarker
		}
		return s.Placeholder
	}
	for _, s := range ss {
		add(s.value, repl(s))
	}
	for _, s := range ss {
		if s.value == "" {
			continue
		}
		for _, f := range secretForms(s, repl(s)) {
			add(f[0], f[1])
		}
	}
	if len(r.pairs) == 0 {
		return nil
	}
	slices.SortStableFunc(r.pairs, func(a, b redaction) int { return len(b.value) - len(a.value) })
	r.filter, r.byPrefix = new([1 << 16 / 64]uint64), map[uint32][]int{}
	for k, p := range r.pairs {
		if len(p.value) < prefixLen {
			r.short = append(r.short, k)
			continue
		}
		pre := binary.LittleEndian.Uint32(p.value)
		h := prefixHash(pre)
		r.filter[h/64] |= 1 << (h % 64)
		r.byPrefix[pre] = append(r.byPrefix[pre], k)
	}
	return r
}

// header redacts every value of h.
func (r *redactor) header(h http.Header) {
	for _, vs := range h {
		for i, v := range vs {
			vs[i] = r.string(v)
		}
	}
}

// string redacts s. Its values were checked longest first, so a value
// inside a longer one does not split the longer one.
func (r *redactor) string(s string) string {
	if r == nil {
		return s
	}
	for _, p := range r.pairs {
		if strings.Contains(s, string(p.value)) {
			s = strings.ReplaceAll(s, string(p.value), string(p.repl))
		}
	}
	return s
}

// matcher finds matches in one input, left to right. For the short values
// it keeps each one's next occurrence and looks again only for a value
// whose kept occurrence fell behind; the others it finds in one pass (see
// redactor.filter). A scan costs about one pass per short value and one for
// the rest, however many matches the input holds.
type matcher struct {
	r    *redactor
	data []byte
	pos  []int // each short pair's next occurrence in data; -1: none left
}

func (r *redactor) matcher(data []byte) *matcher {
	m := &matcher{r: r, data: data, pos: make([]int, len(r.short))}
	for k := range m.pos {
		m.pos[k] = -2 // not looked for yet
	}
	return m
}

// from returns the leftmost match at or after i (the longest value where
// several start there) and its offset in data, or -1.
func (m *matcher) from(i int) (int, *redaction) {
	at, which := -1, (*redaction)(nil)
	for k, pk := range m.r.short {
		if m.pos[k] == -1 {
			continue
		}
		if m.pos[k] < i {
			j := bytes.Index(m.data[i:], m.r.pairs[pk].value)
			if j < 0 {
				m.pos[k] = -1
				continue
			}
			m.pos[k] = i + j
		}
		// Pairs are longest first: at the same offset the first one wins.
		if at < 0 || m.pos[k] < at {
			at, which = m.pos[k], &m.r.pairs[pk]
		}
	}
	// The longer values, up to and including at (where one is longer than
	// the short value found there).
	end := len(m.data) - prefixLen + 1
	if len(m.r.byPrefix) == 0 {
		end = 0
	}
	if at >= 0 {
		end = min(end, at+1)
	}
	f, data := m.r.filter, m.data
	for j := i; j < end; j++ {
		pre := binary.LittleEndian.Uint32(data[j:])
		if h := prefixHash(pre); f[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, pk := range m.r.byPrefix[pre] {
			if p := &m.r.pairs[pk]; bytes.HasPrefix(data[j:], p.value) {
				return j, p
			}
		}
	}
	return at, which
}

// reader returns src with the secret values replaced, streaming: it holds
// back at most the longest value's (or form's) length minus one byte, so a value split
// across reads (or chunks, or TLS records) is still found, and a body that
// arrives bit by bit (server-sent events) is passed on as it arrives.
func (r *redactor) reader(src io.Reader) io.Reader {
	return &redactReader{r: r, src: src, buf: make([]byte, 0, 32<<10+r.maxLen)}
}

type redactReader struct {
	r   *redactor
	src io.Reader
	buf []byte // the input being scanned
	out []byte // scanned output not yet returned; points into buf or scratch
	// tail is input held back for the next scan (it points into buf); it
	// moves to buf's start once out is consumed.
	tail    []byte
	scratch []byte
	err     error
}

func (rr *redactReader) Read(p []byte) (int, error) {
	for len(rr.out) == 0 {
		if rr.err != nil {
			return 0, rr.err
		}
		rr.fill()
	}
	n := copy(p, rr.out)
	rr.out = rr.out[n:]
	return n, nil
}

// fill reads once from src and scans what it has: all of it at the end of
// the input, otherwise all but a tail that could start a match.
func (rr *redactReader) fill() {
	// The held tail moves to the front of buf; out is empty, so nothing
	// still points into buf.
	rr.buf = append(rr.buf[:0], rr.tail...)
	n, err := rr.src.Read(rr.buf[len(rr.buf):cap(rr.buf)])
	data := rr.buf[:len(rr.buf)+n]
	rr.buf = data
	if err != nil {
		rr.err = err
	}
	// Unless the input ended, a match may start only where the whole of
	// the longest value would still fit: anything later (a possible start
	// of a value the next read completes) is held back and scanned again.
	limit := len(data)
	if err == nil {
		limit = max(0, len(data)-(rr.r.maxLen-1))
	}
	mt := rr.r.matcher(data)
	at, m := mt.from(0)
	if at < 0 || at >= limit {
		// The common case: no copy beyond the read itself.
		rr.out, rr.tail = data[:limit], data[limit:]
		return
	}
	out := rr.scratch[:0]
	i := 0
	for at >= 0 && at < limit {
		out = append(out, data[i:at]...)
		out = append(out, m.repl...)
		i = at + len(m.value)
		at, m = mt.from(i)
	}
	keep := max(i, limit)
	out = append(out, data[i:keep]...)
	rr.scratch = out
	rr.out, rr.tail = out, data[keep:]
}

// contentCoding is how a response body is encoded, for redaction: "" for
// none, "gzip" for one gzip layer, which the proxy decodes, and otherwise
// the codings as the upstream listed them (in one header or several).
func contentCoding(h http.Header) string {
	var codings []string
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return ""
	case len(codings) == 1 && (codings[0] == "gzip" || codings[0] == "x-gzip"):
		return "gzip"
	}
	return strings.Join(codings, ", ")
}

// gzipBody decodes a gzip body on first read, so that a bad body fails the
// response as a cut-short body rather than before its headers.
type gzipBody struct {
	src io.Reader
	zr  *gzip.Reader
	err error
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.src)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}
