package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hopHeaders belong to one connection and are never passed on.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Http2-Settings",
}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// upgradeType returns the protocol a request or response asks to switch to.
func upgradeType(h http.Header) string {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// forward checks one HTTP request against the rules and sends it to t,
// streaming the response back. It reports whether cc can carry another
// request.
func (p *Proxy) forward(ctx context.Context, cc *clientConn, req *http.Request, t *target, rec *record) bool {
	defer req.Body.Close()
	path := requestPath(req.URL)
	rec.Path = path
	v := p.pol.request(t.host, t.port, req.Method, req.URL, req.Header)
	switch {
	case t.inner && t.approved && !v.listed:
		// A human allowed the host at CONNECT; no rule narrows it.
		v = verdict{allow: true, rule: "approval", intercept: v.intercept}
	case !t.inner:
		v = p.decide(ctx, cc, v, t.host, t.port, req.Method+" http://"+hostPort(t)+path)
	}
	rec.Rule = v.rule
	if v.err != nil {
		p.upstreamFailed(cc, rec, t.host, t.port, v.err)
		return false
	}
	if !v.allow {
		rec.Decision, rec.Reason, rec.Status = "deny", v.reason, http.StatusForbidden
		return p.refuseRequest(cc, req, rec, p.refusalText(v), nil, true)
	}
	up := upgradeType(req.Header)
	if why := upgradeRefusal(up, v, t); why != "" {
		rec.Decision, rec.Reason, rec.Status = "deny", why, http.StatusForbidden
		return p.refuseRequest(cc, req, rec, "docker bottle egress proxy: "+why+".\n", nil, true)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := req.WithContext(rctx)
	out.URL = &url.URL{Scheme: t.scheme, Host: hostPort(t), Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	out.Host = out.URL.Host
	out.RequestURI = ""
	out.Close = false
	out.Header = req.Header.Clone()
	removeHopHeaders(out.Header)
	if up != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", up)
	}
	var red *redactor
	if t.scheme == "https" {
		p.applySecrets(out.Header, t.host)
		red = p.pol.redactors[t.host]
	}
	if red != nil {
		// Response bodies are checked for the secret's value as they
		// stream; a compressed body would hide it, and a range of one
		// could hold a piece of the value too short to be recognised.
		out.Header.Set("Accept-Encoding", "identity")
		out.Header.Del("Range")
		out.Header.Del("If-Range")
	}
	body := &requestBody{r: req.Body}
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = body
	}
	if strings.EqualFold(out.Header.Get("Expect"), "100-continue") {
		out.Header.Del("Expect")
		cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := cc.bw.Flush(); err != nil {
			return false
		}
	}

	// Servers that honour a _method form field (Rack, Symfony) would take
	// the method from the body: on a host with method rules, a form body is
	// read ahead, bounded, and refused like a method-override header.
	if _, methods := p.pol.narrowed(t.host, t.port); methods && formBody(req) {
		peeked, what, err := peekFormOverride(req.Body, req.Header.Get("Content-Type"))
		switch {
		case errors.Is(err, errFormTooLarge):
			rec.Decision, rec.Status = "deny", http.StatusForbidden
			rec.Reason = fmt.Sprintf("%s %s on %s:%d is refused: its form body is over %d bytes, more than the proxy reads ahead to check it for a _method field, and the egress rules for this host allow only some methods", req.Method, path, t.host, t.port, maxFormPeek)
			return p.refuseRequest(cc, req, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil, false)
		case err != nil:
			rec.Decision, rec.Reason = "error", "reading the request body: "+err.Error()
			p.finish(rec)
			return false
		case what != "":
			rec.Decision, rec.Status = "deny", http.StatusForbidden
			rec.Reason = fmt.Sprintf("%s %s on %s:%d is refused: it carries the %s, and the egress rules for this host allow only some methods; send the method in the request line", req.Method, path, t.host, t.port, what)
			return p.refuseRequest(cc, req, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil, true)
		}
		body.r = io.MultiReader(bytes.NewReader(peeked), body.r)
	}

	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		rec.BytesUp = body.n.Load()
		p.forwardFailed(cc, rec, t, err)
		return false
	}
	defer resp.Body.Close()
	rec.Decision, rec.Status = "allow", resp.StatusCode
	if red != nil {
		if err := redactResponse(red, resp, req.Method); err != nil {
			rec.BytesUp = body.n.Load()
			rec.Decision, rec.Status, rec.Reason = "error", http.StatusBadGateway, err.Error()
			p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil)
			return false
		}
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		if got := upgradeType(resp.Header); up == "" || !strings.EqualFold(got, up) {
			rec.BytesUp = body.n.Load()
			rec.Decision, rec.Status = "error", http.StatusBadGateway
			rec.Reason = fmt.Sprintf("the upstream switched protocols to %q, which the request did not ask for", got)
			p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil)
			return false
		}
		n := p.switchProtocols(cc, resp)
		rec.BytesUp, rec.BytesDown = body.n.Load()+n[0], n[1]
		p.finish(rec)
		return false
	}
	down, keep, err := writeResponse(cc, resp, req, !req.Close, red)
	rec.BytesDown = down
	if err != nil {
		rec.Reason = "response cut short: " + err.Error()
		keep = false
	}
	// What the upstream did not read of the request body is still on the
	// client connection; read a bounded rest, or give up the connection.
	if !body.finish(keep) {
		keep = false
	}
	rec.BytesUp = body.n.Load()
	p.finish(rec)
	return keep
}

// upgradeRefusal says why a request's Upgrade (up, "" for none) may not
// pass to t, or returns "". Only WebSocket passes: an h2c connection would
// carry requests the rules never see. A host the proxy intercepts takes a
// WebSocket only where a rule opts in, since nothing inside it is checked or
// redacted.
func upgradeRefusal(up string, v verdict, t *target) string {
	switch {
	case up == "":
		return ""
	case !strings.EqualFold(up, "websocket"):
		return fmt.Sprintf("Upgrade: %s is refused: only WebSocket upgrades pass the bottle's egress proxy; send the request without Upgrade (for h2c, over HTTP/1.1)", up)
	case v.intercept && !v.websocket:
		return fmt.Sprintf("a WebSocket to %s:%d is refused: the proxy adds secrets to or checks the methods and paths of this host's requests, which it cannot do inside a WebSocket; the user can allow it with websocket: true on the host's egress rule", t.host, t.port)
	}
	return ""
}

func hostPort(t *target) string {
	h := t.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if t.scheme == "https" && t.port == 443 || t.scheme == "http" && t.port == 80 {
		return h
	}
	return h + ":" + strconv.Itoa(t.port)
}

// applySecrets sets (or fills the placeholder of) each secret header for
// host. It runs only for TLS upstreams: a secret never crosses the network
// in the clear.
func (p *Proxy) applySecrets(h http.Header, host string) {
	for _, s := range p.pol.secrets[host] {
		val := s.value
		if s.Format != "" {
			val = strings.ReplaceAll(s.Format, "{value}", s.value)
		}
		if s.Placeholder == "" {
			h.Set(s.Header, val)
			continue
		}
		vs := h.Values(s.Header)
		for i, v := range vs {
			vs[i] = strings.ReplaceAll(v, s.Placeholder, val)
		}
	}
}

// redactResponse makes resp carry no value of red's secrets: its headers are
// redacted now, its body as it streams. The body's length changes when a
// replacement is not as long as its value, so the length is then dropped
// (the response goes out chunked). A gzip body the upstream sent although
// the proxy asked for identity is decoded first; a body in another encoding
// (br, zstd, deflate, gzip twice) cannot be checked, so it is an error: the
// response must not reach the agent.
func redactResponse(red *redactor, resp *http.Response, method string) error {
	red.header(resp.Header)
	resp.Status = red.string(resp.Status)
	if !hasBody(method, resp.StatusCode) || resp.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	var body io.Reader = resp.Body
	switch ce := contentCoding(resp.Header); ce {
	case "":
	case "gzip":
		body = &gzipBody{src: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.ContentLength = -1
	default:
		return fmt.Errorf("the upstream answered in Content-Encoding %q although the proxy asked for identity, and the proxy cannot check such a body for the secret it adds to this host's requests, so it withholds the response", ce)
	}
	if !red.sameLen {
		resp.ContentLength = -1
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{red.reader(body), resp.Body}
	return nil
}

// hasBody reports whether a response to method with status carries a body.
func hasBody(method string, status int) bool {
	return method != http.MethodHead && status/100 != 1 &&
		status != http.StatusNoContent && status != http.StatusNotModified
}

// requestBody is the request body as the transport sees it. The transport
// may still read or close it after RoundTrip returns; closing does not close
// the client's body, so that the proxy can read what is left of it off the
// client connection (keep-alive) once it detaches it.
type requestBody struct {
	mu       sync.Mutex
	r        io.Reader
	n        atomic.Int64
	eof      bool
	detached bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errors.New("request body detached")
	}
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *requestBody) Close() error { return nil }

// finish detaches the body from the transport and, if drain, reads a bounded
// rest. It reports whether the whole body has been read.
func (b *requestBody) finish(drain bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	if b.eof || b.r == nil || b.r == http.NoBody {
		return true
	}
	if !drain {
		return false
	}
	_, err := io.CopyN(io.Discard, b.r, 256<<10)
	return errors.Is(err, io.EOF)
}

// forwardFailed answers a request the transport could not deliver.
func (p *Proxy) forwardFailed(cc *clientConn, rec *record, t *target, err error) {
	var ue x509.UnknownAuthorityError
	var ce *tls.CertificateVerificationError
	var he x509.HostnameError
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &he) {
		rec.Decision, rec.Status = "error", http.StatusBadGateway
		rec.Reason = fmt.Sprintf("the TLS certificate of %s:%d is not trusted (%v)", t.host, t.port, rootCause(err))
		p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+".\nIf a corporate proxy intercepts TLS, the user adds its CA as the bottle's extra CA.\n", nil)
		return
	}
	p.upstreamFailed(cc, rec, t.host, t.port, err)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// writeResponse writes resp to the client, flushing as the body arrives so
// that streamed responses (server-sent events) are not held back. A body of
// unknown length goes out chunked (to HTTP/1.1 clients). It reports whether
// the connection can carry another request.
func writeResponse(cc *clientConn, resp *http.Response, req *http.Request, keep bool, red *redactor) (n int64, kept bool, err error) {
	defer func() { kept = keep && err == nil }()
	bw := cc.bw
	method := req.Method
	bodyless := !hasBody(method, resp.StatusCode)
	removeHopHeaders(resp.Header)
	resp.Header.Del("Content-Length")
	text := http.StatusText(resp.StatusCode)
	if _, after, ok := strings.Cut(resp.Status, " "); ok && after != "" {
		text = after
	}
	fmt.Fprintf(bw, "HTTP/1.1 %03d %s\r\n", resp.StatusCode, text)
	resp.Header.Write(bw) //nolint:errcheck // bw keeps the error for the Flush below
	chunked := false
	switch {
	case bodyless:
		if method == http.MethodHead && resp.ContentLength >= 0 {
			fmt.Fprintf(bw, "Content-Length: %d\r\n", resp.ContentLength)
		}
	case resp.ContentLength >= 0:
		fmt.Fprintf(bw, "Content-Length: %d\r\n", resp.ContentLength)
	case req.ProtoAtLeast(1, 1):
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		chunked = true
	default:
		keep = false // an HTTP/1.0 client reads such a body until the close
	}
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if bodyless {
		return 0, keep, bw.Flush()
	}
	cc.SetWriteDeadline(time.Time{})
	buf := make([]byte, 32<<10)
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if chunked {
				fmt.Fprintf(bw, "%x\r\n", m)
			}
			bw.Write(buf[:m])
			if chunked {
				bw.WriteString("\r\n")
			}
			if err := bw.Flush(); err != nil {
				return n, false, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, false, rerr
		}
	}
	if chunked {
		bw.WriteString("0\r\n")
		if red != nil {
			red.header(resp.Trailer)
		}
		resp.Trailer.Write(bw) //nolint:errcheck // bw keeps the error for the Flush below
		bw.WriteString("\r\n")
	} else if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, false, fmt.Errorf("upstream sent %d of %d body bytes", n, resp.ContentLength)
	}
	return n, keep, bw.Flush()
}

// switchProtocols relays a 101 response and then the upgraded connection
// (WebSocket) both ways. It returns the bytes sent up and down.
func (p *Proxy) switchProtocols(cc *clientConn, resp *http.Response) [2]int64 {
	up, _ := resp.Body.(io.ReadWriteCloser)
	fmt.Fprintf(cc.bw, "HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(cc.bw) //nolint:errcheck // cc.bw keeps the error for the Flush below
	cc.bw.WriteString("\r\n")
	if err := cc.bw.Flush(); err != nil || up == nil {
		return [2]int64{}
	}
	cc.SetDeadline(time.Time{})
	var n [2]int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		n[1], _ = io.Copy(cc.Conn, up)
		cc.Conn.Close()
	}()
	n[0], _ = io.Copy(up, cc.br)
	up.Close()
	<-done
	return n
}
