package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// deafConn is a client that sends its requests but never takes a reply:
// every write fails, as to a client whose receive side is gone.
type deafConn struct {
	net.Conn // nil: only the methods below are used
	r        io.Reader
}

func (c *deafConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *deafConn) Write([]byte) (int, error)  { return 0, errors.New("the client stopped reading") }
func (c *deafConn) Close() error               { return nil }
func (c *deafConn) LocalAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3128} }
func (c *deafConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *deafConn) SetDeadline(time.Time) error      { return nil }
func (c *deafConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deafConn) SetWriteDeadline(time.Time) error { return nil }

// A refusal that could not be written ends the connection, even where the
// refusal itself would have let it carry another request: the client's
// replies are lost from there on, so the proxy must not go on handling
// what it sends.
func TestFailedRefusalEndsConnection(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		TokenFile: writeFile(t, dir, "token", testToken),
		Rules:     []Rule{{Host: "allowed.test"}},
		Limits:    Limits{MaxAuthFailures: 5, HeaderTimeout: Duration(2 * time.Second), IdleTimeout: Duration(2 * time.Second)},
	}
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("test: no network") }
	p, err := New(cfg, WithResolver(loopbackResolver()), WithDialer(refuse), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	noToken := "GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
	p.serveConn(context.Background(), &deafConn{r: strings.NewReader(noToken + noToken + noToken)})
	if h := p.Health(); h.Requests != 1 {
		t.Errorf("the proxy handled %d requests after its first reply failed, want 1 (it should close the connection)", h.Requests)
	}
}
