// Package listen bounds the connections a bundle daemon holds, so that slow
// or endless clients cannot exhaust the one process that runs the proxy,
// the gate and the supervisor.
//
// A Listener caps the connections open at once, per client address and in
// total. A connection is either busy (a request is being handled: the
// daemon pins it) or waiting (not yet sent a whole request, or idle between
// requests). When a cap is reached, the new connection takes the place of
// the one that has waited longest; it is refused only when every connection
// counted against the cap is busy. So a flood of slow connections (headers
// or bodies a byte at a time) cannot keep a new client out: the operator's
// `approvals`, a health check or the agent's next request gets in, and the
// slowest waiter goes. golang.org/x/net/netutil.LimitListener has a total
// cap only, and when full it stops accepting, which would keep exactly
// those clients out.
//
// Busy connections are bounded by the daemons (the supervisor's agent
// slots, the proxy's tunnel limit) and by timeouts: HTTPServer gives a
// header, a body and an idle timeout, and Limits.WriteStall ends a
// connection whose client stopped reading.
package listen

import (
	"container/list"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound a Listener. Zero values mean no bound.
type Limits struct {
	// MaxConns bounds the connections open at once.
	MaxConns int
	// MaxPerClient bounds the connections open at once from one address
	// (the port aside).
	MaxPerClient int
	// WriteStall ends a connection when one write to it makes no progress
	// for this long (the client stopped reading).
	WriteStall time.Duration
}

// Stats is what a Listener did.
type Stats struct {
	Open    int    `json:"open"`
	Busy    int    `json:"busy"`
	Evicted uint64 `json:"evicted"`
	Refused uint64 `json:"refused"`
}

// Listener is a net.Listener whose connections are bounded by Limits.
type Listener struct {
	net.Listener
	lim Limits

	mu      sync.Mutex
	waiting *list.List // waiting connections, longest waiting first
	clients map[string]*client
	open    int
	busy    int

	evicted, refused atomic.Uint64
}

type client struct {
	open    int
	waiting *list.List
}

// Limit wraps ln.
func Limit(ln net.Listener, lim Limits) *Listener {
	return &Listener{Listener: ln, lim: lim, waiting: list.New(), clients: map[string]*client{}}
}

// Accept waits for the next connection and admits it, making room by
// closing the longest-waiting connection when a cap is reached; a
// connection that finds every place busy is closed at once and the next
// one awaited.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.admit(nc); c != nil {
			return c, nil
		}
		l.refused.Add(1)
		nc.Close()
	}
}

func (l *Listener) admit(nc net.Conn) *Conn {
	addr := clientAddr(nc.RemoteAddr())
	l.mu.Lock()
	cl := l.clients[addr]
	if cl == nil {
		cl = &client{waiting: list.New()}
		l.clients[addr] = cl
	}
	var victim *Conn
	switch {
	case l.lim.MaxPerClient > 0 && cl.open >= l.lim.MaxPerClient:
		victim = oldest(cl.waiting)
	case l.lim.MaxConns > 0 && l.open >= l.lim.MaxConns:
		victim = oldest(l.waiting)
	default:
		c := l.track(nc, addr, cl)
		l.mu.Unlock()
		return c
	}
	if victim == nil {
		if cl.open == 0 {
			delete(l.clients, addr)
		}
		l.mu.Unlock()
		return nil
	}
	l.untrack(victim)
	c := l.track(nc, addr, cl)
	l.mu.Unlock()
	l.evicted.Add(1)
	victim.Conn.Close()
	return c
}

func oldest(waiting *list.List) *Conn {
	if e := waiting.Front(); e != nil {
		return e.Value.(*Conn)
	}
	return nil
}

// track counts a new connection, waiting. Call with l.mu held.
func (l *Listener) track(nc net.Conn, addr string, cl *client) *Conn {
	c := &Conn{Conn: nc, l: l, addr: addr, cl: cl}
	cl.open++
	l.open++
	c.wait()
	return c
}

// untrack stops counting c. Call with l.mu held.
func (l *Listener) untrack(c *Conn) {
	if c.closed {
		return
	}
	c.closed = true
	c.unwait()
	if c.busy > 0 {
		l.busy--
	}
	c.cl.open--
	l.open--
	if c.cl.open == 0 {
		delete(l.clients, c.addr)
	}
}

// Stats reports the connections open and busy now, and how many were
// evicted and refused so far.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: l.open, Busy: l.busy, Evicted: l.evicted.Load(), Refused: l.refused.Load()}
}

// clientAddr is a connection's client: its IP address.
func clientAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Conn is a connection a Listener admitted.
type Conn struct {
	net.Conn
	l    *Listener
	addr string
	cl   *client
	// Guarded by l.mu.
	busy         int
	closed       bool
	elem, clElem *list.Element
}

// wait puts c last in the waiting lists. Call with l.mu held.
func (c *Conn) wait() {
	c.elem = c.l.waiting.PushBack(c)
	c.clElem = c.cl.waiting.PushBack(c)
}

// unwait takes c out of the waiting lists. Call with l.mu held.
func (c *Conn) unwait() {
	if c.elem != nil {
		c.l.waiting.Remove(c.elem)
		c.cl.waiting.Remove(c.clElem)
		c.elem, c.clElem = nil, nil
	}
}

// Busy pins c while a request is handled: it is not evicted until done is
// called. Calls nest.
func (c *Conn) Busy() (done func()) {
	c.l.mu.Lock()
	if !c.closed {
		if c.busy == 0 {
			c.unwait()
			c.l.busy++
		}
		c.busy++
	}
	c.l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.l.mu.Lock()
			defer c.l.mu.Unlock()
			if c.closed || c.busy == 0 {
				return
			}
			c.busy--
			if c.busy == 0 {
				c.l.busy--
				c.wait() // the most recently active waits last
			}
		})
	}
}

// Close closes the connection and frees its place.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.untrack(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// Write ends the connection when the client does not read for
// Limits.WriteStall.
func (c *Conn) Write(b []byte) (int, error) {
	if d := c.l.lim.WriteStall; d > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	return c.Conn.Write(b)
}

// ReadFrom keeps what the connection can do without a copy in user space
// (splice from another TCP connection, which the proxy's tunnels use),
// unless each write must be bounded by WriteStall.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok && c.l.lim.WriteStall <= 0 {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c}, r)
}

// writerOnly hides a writer's ReadFrom, so that io.Copy writes through
// Write.
type writerOnly struct{ io.Writer }

// CloseWrite half-closes the connection when it can (a TCP connection):
// a tunnel passes its client's end of input on.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Busy pins nc, when a Listener admitted it, while a request is handled;
// call done when it is.
func Busy(nc net.Conn) (done func()) {
	if c, ok := nc.(*Conn); ok {
		return c.Busy()
	}
	return func() {}
}

// Timeouts of an HTTP daemon.
type Timeouts struct {
	// Header bounds reading a request's line and headers.
	Header time.Duration
	// Body bounds reading a request's body, from the end of its headers.
	Body time.Duration
	// Idle closes a keep-alive connection that sends no next request.
	Idle time.Duration
}

type connKey struct{}

// HTTPServer is an http.Server for h with the timeouts t, whose handlers
// pin their connection (see Conn.Busy) while they run. Serve it on a
// Listener. The caller may set the other fields (BaseContext, ErrorLog).
func HTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           pinning(h, t.Body),
		ReadHeaderTimeout: t.Header,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

// ConnOf is the connection a request came on, when HTTPServer serves it.
func ConnOf(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}

// pinning pins a request's connection once its body is read (at once when
// it has none) until the handler returns: a client still sending its body
// waits, like one still sending its headers, and gives its place to a
// newcomer when a cap is reached.
func pinning(h http.Handler, body time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &pin{c: ConnOf(r)}
		defer p.release()
		if r.Body == nil || r.Body == http.NoBody {
			p.take()
		} else {
			rc := http.NewResponseController(w)
			if body > 0 {
				rc.SetReadDeadline(time.Now().Add(body))
			}
			r.Body = &pinningBody{ReadCloser: r.Body, rc: rc, deadline: body > 0, pin: p}
		}
		h.ServeHTTP(w, r)
	})
}

type pin struct {
	mu   sync.Mutex
	c    net.Conn
	done func()
}

func (p *pin) take() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = Busy(p.c)
	}
}

func (p *pin) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		p.done()
	}
}

// pinningBody pins the connection at the end of the body, and lifts the
// body's read deadline then: reading on (the server watching for the
// client going away) must not end a long answer.
type pinningBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	deadline bool
	pin      *pin
}

func (b *pinningBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.pin.take()
		if b.deadline {
			b.deadline = false
			b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}
