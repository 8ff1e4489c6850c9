package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// intercept answers an allowed CONNECT to a host with secrets or method/path
// rules: it terminates the agent's TLS with a leaf minted from the bottle CA
// and forwards each request on its own, checked against the rules. A tunnel
// that does not start with a TLS handshake is read as plain HTTP.
func (p *Proxy) intercept(ctx context.Context, cc *clientConn, rec *record, t *target) bool {
	// The guard's verdict comes before the tunnel is answered; the transport
	// checks again, on the addresses it dials.
	if _, err := p.checkedAddrs(ctx, t.host, p.pol.reachAllowed(t.host, t.port)); err != nil {
		p.upstreamFailed(cc, rec, t.host, t.port, err)
		return false
	}
	if p.minter == nil {
		rec.Decision, rec.Status = "error", http.StatusInternalServerError
		rec.Reason = "interception needs the bottle CA, which the proxy config does not name"
		p.refuse(cc, rec, "docker bottle egress proxy: "+rec.Reason+".\n", nil)
		return false
	}
	if _, err := cc.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return false
	}
	rec.Decision, rec.Status, rec.Reason = "allow", http.StatusOK, "intercepted"
	defer p.finish(rec)

	cc.SetReadDeadline(time.Now().Add(p.lim.HeaderTimeout.D()))
	first, err := cc.br.Peek(1)
	if err != nil {
		return false
	}
	inner := &countConn{Conn: cc.Conn, r: cc.br}
	defer func() { rec.BytesUp, rec.BytesDown = inner.in.Load(), inner.out.Load() }()
	var conn net.Conn = inner
	t.scheme = "http"
	if first[0] == 0x16 { // a TLS handshake record
		leaf, err := p.minter.Leaf(t.host)
		if err != nil {
			rec.Decision, rec.Reason = "error", err.Error()
			return false
		}
		tc := tls.Server(inner, &tls.Config{
			Certificates: []tls.Certificate{*leaf},
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		})
		hctx, cancel := context.WithTimeout(ctx, p.lim.HeaderTimeout.D())
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			rec.Reason = fmt.Sprintf("intercepted; the agent's TLS handshake failed (does it trust the bottle CA?): %v", err)
			return false
		}
		conn, t.scheme = tc, "https"
	}
	cc.SetReadDeadline(time.Time{})
	p.serveRequests(ctx, newClientConn(conn, cc.client, 64<<10), t)
	return false
}

// countConn reads through the client's buffered reader (which may hold the
// start of the TLS handshake) and counts the bytes each way.
type countConn struct {
	net.Conn
	r       io.Reader
	in, out atomic.Int64
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}
