package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Resolver looks names up. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc opens a TCP connection to an IP:port the guard has checked.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Address classes the guard refuses unless a rule says private: true.
var guardedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"},
}

// Address classes refused even with private: true: no TCP peer lives there,
// or (0.0.0.0) the kernel quietly turns it into loopback.
var refusedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4 address
// in their last 32 bits, which is what the guard must judge.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// classify returns the class of a refused address, and whether private: true
// lifts the refusal. An empty class means a public address.
func classify(a netip.Addr) (class string, liftable bool) {
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, p := range refusedPrefixes {
		if p.prefix.Contains(a) {
			return p.class, false
		}
	}
	for _, p := range guardedPrefixes {
		if p.prefix.Contains(a) {
			return p.class, true
		}
	}
	return "", false
}

// guardError is a destination the guard refused.
type guardError struct {
	host  string
	addr  netip.Addr
	class string
}

func (e *guardError) Error() string {
	if e.host == e.addr.String() {
		return fmt.Sprintf("%s is a %s address, which bottles may not reach", e.host, e.class)
	}
	return fmt.Sprintf("%s resolves to %s, a %s address, which bottles may not reach", e.host, e.addr, e.class)
}

// resolveError is a name the proxy could not resolve.
type resolveError struct {
	host string
	err  error
}

func (e *resolveError) Error() string {
	return fmt.Sprintf("cannot resolve %s: %v", e.host, e.err)
}

func (e *resolveError) Unwrap() error { return e.err }

// checkedAddrs resolves host (or parses an IP literal) and returns the
// addresses the guard lets through, in resolver order.
func (p *Proxy) checkedAddrs(ctx context.Context, host string, private bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if ip, err := parseIP(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(ctx, p.lim.DialTimeout.D())
		defer cancel()
		addrs, err = p.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, &resolveError{host: host, err: err}
		}
		if len(addrs) == 0 {
			return nil, &resolveError{host: host, err: errors.New("no addresses")}
		}
	}
	var ok []netip.Addr
	var refused *guardError
	for _, a := range addrs {
		a = a.Unmap()
		class, liftable := classify(a)
		if class == "" || liftable && private {
			ok = append(ok, a)
		} else if refused == nil {
			refused = &guardError{host: host, addr: a, class: class}
		}
	}
	if len(ok) == 0 {
		return nil, refused
	}
	return ok, nil
}

// dialChecked connects to host:port through the guard: it resolves the name
// itself and dials exactly the addresses it checked, so no second lookup can
// swap in another address.
func (p *Proxy) dialChecked(ctx context.Context, host string, port int, private bool) (net.Conn, error) {
	addrs, err := p.checkedAddrs(ctx, host, private)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.lim.DialTimeout.D())
	defer cancel()
	var errs []error
	for _, a := range addrs {
		c, err := p.dial(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connecting to %s:%d: %w", host, port, errors.Join(errs...))
}

// upstreamDial is the transport's dialer for forwarded HTTP requests: the
// same guard, with private: true taken from the rules for host:port.
func (p *Proxy) upstreamDial(ctx context.Context, network, addr string) (net.Conn, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, err
	}
	host := normHost(h)
	return p.dialChecked(ctx, host, port, p.pol.privateAllowed(host, port))
}

func defaultDialer(timeout time.Duration) DialFunc {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}
