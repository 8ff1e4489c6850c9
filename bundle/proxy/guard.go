package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver looks names up. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc opens a TCP connection to an IP:port the guard has checked.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// reach is what an allowing rule opts a host in to beyond public addresses.
// Each class is a separate opt-in: a rule meant for a private service does
// not also open the bundle's own loopback or the cloud metadata service.
type reach uint8

const (
	reachPrivate  reach = 1 << iota // private: RFC 1918, ULA, site-local, CGNAT
	reachLoopback                   // loopback: the bundle itself
	reachMetadata                   // metadata: link-local, where cloud metadata services answer
)

// option names the rule option that lifts r, for refusals.
func (r reach) option() string {
	switch r {
	case reachPrivate:
		return "private: true"
	case reachLoopback:
		return "loopback: true"
	case reachMetadata:
		return "metadata: true"
	}
	return ""
}

// Address classes the guard refuses unless a rule opts in, most specific
// first: the metadata services that live inside a private range need the
// metadata opt-in, not private.
var guardedPrefixes = []struct {
	prefix netip.Prefix
	class  string
	lift   reach
}{
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata", reachMetadata},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata", reachMetadata},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", reachLoopback},
	{netip.MustParsePrefix("::1/128"), "loopback", reachLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)", reachMetadata},
	{netip.MustParsePrefix("fe80::/10"), "link-local", reachMetadata},
	{netip.MustParsePrefix("10.0.0.0/8"), "private", reachPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), "private", reachPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), "private", reachPrivate},
	{netip.MustParsePrefix("fc00::/7"), "private", reachPrivate},
	{netip.MustParsePrefix("fec0::/10"), "site-local", reachPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT", reachPrivate},
}

// Address classes refused whatever the rules say: no TCP peer lives there,
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

// IPv6 forms that carry an IPv4 address: a translator or tunnel on the way
// delivers packets for them to that IPv4 address, which is what the guard
// must judge. A local-use NAT64 prefix may be /48, /56, /64 or /96 (RFC
// 6052), which puts the IPv4 bytes in different places: every layout whose
// other bytes are zero, as RFC 6052 has them, is judged.
var embeddingPrefixes = []struct {
	prefix  netip.Prefix
	kind    string
	layouts []v4Layout
}{
	{netip.MustParsePrefix("::/96"), "IPv4-compatible", []v4Layout{last32}},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "SIIT (IPv4-translated)", []v4Layout{last32}},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64", []v4Layout{last32}},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64", []v4Layout{
		{at: [4]int{6, 7, 9, 10}, zero: []int{8, 11, 12, 13, 14, 15}},
		{at: [4]int{7, 9, 10, 11}, zero: []int{8, 12, 13, 14, 15}},
		{at: [4]int{9, 10, 11, 12}, zero: []int{8, 13, 14, 15}},
		last32,
	}},
	{netip.MustParsePrefix("2002::/16"), "6to4", []v4Layout{{at: [4]int{2, 3, 4, 5}}}},
	// Teredo: the server's address, and the client's, which is stored
	// inverted.
	{netip.MustParsePrefix("2001::/32"), "Teredo", []v4Layout{{at: [4]int{4, 5, 6, 7}}, {at: [4]int{12, 13, 14, 15}, xor: 0xff}}},
}

// v4Layout is where an IPv6 form keeps the IPv4 address it carries.
type v4Layout struct {
	at   [4]int
	zero []int // bytes that must be zero for the layout to apply
	xor  byte
}

var last32 = v4Layout{at: [4]int{12, 13, 14, 15}}

func (l v4Layout) extract(b [16]byte) (netip.Addr, bool) {
	for _, i := range l.zero {
		if b[i] != 0 {
			return netip.Addr{}, false
		}
	}
	return netip.AddrFrom4([4]byte{b[l.at[0]] ^ l.xor, b[l.at[1]] ^ l.xor, b[l.at[2]] ^ l.xor, b[l.at[3]] ^ l.xor}), true
}

// addrClass is the guard's judgement of one address: an empty class means
// a public address; lift is the opt-in that lets a rule reach it (0: none
// can). embedded, when set, is the IPv4 address an IPv6 form carries and
// via names that form.
type addrClass struct {
	class    string
	lift     reach
	embedded netip.Addr
	via      string
}

// classify judges an address: first as itself, then, for an IPv6 form that
// carries IPv4 addresses, by the first of them the guard refuses.
func classify(a netip.Addr) addrClass {
	a = a.Unmap()
	if c := classifyPlain(a); c.class != "" {
		return c
	}
	if !a.Is6() {
		return addrClass{}
	}
	b := a.As16()
	for _, e := range embeddingPrefixes {
		if !e.prefix.Contains(a) {
			continue
		}
		for _, l := range e.layouts {
			v4, ok := l.extract(b)
			if !ok {
				continue
			}
			if c := classifyPlain(v4); c.class != "" {
				c.embedded, c.via = v4, e.kind
				return c
			}
		}
	}
	return addrClass{}
}

func classifyPlain(a netip.Addr) addrClass {
	for _, p := range refusedPrefixes {
		if p.prefix.Contains(a) {
			return addrClass{class: p.class}
		}
	}
	for _, p := range guardedPrefixes {
		if p.prefix.Contains(a) {
			return addrClass{class: p.class, lift: p.lift}
		}
	}
	return addrClass{}
}

// guardError is a destination the guard refused.
type guardError struct {
	host string
	addr netip.Addr
	addrClass
}

func (e *guardError) Error() string {
	what := fmt.Sprintf("%s %s address", article(e.class), e.class)
	if e.via != "" {
		what = fmt.Sprintf("%s %s IPv6 address that carries %s, %s", article(e.via), e.via, e.embedded, what)
	}
	if e.host == e.addr.String() {
		return fmt.Sprintf("%s is %s, which bottles may not reach", e.host, what)
	}
	return fmt.Sprintf("%s resolves to %s, %s, which bottles may not reach", e.host, e.addr, what)
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// hint says how the user could let the bottle reach the address, if a rule
// can.
func (e *guardError) hint() string {
	if e.lift == 0 {
		return ""
	}
	return fmt.Sprintf("If the user means the bottle to reach it, they add an egress rule for it with %s.\n", e.lift.option())
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
// addresses the guard lets through with the opt-ins r, in resolver order.
func (p *Proxy) checkedAddrs(ctx context.Context, host string, r reach) ([]netip.Addr, error) {
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
		c := classify(a)
		if c.class == "" || c.lift&r != 0 {
			ok = append(ok, a)
		} else if refused == nil {
			refused = &guardError{host: host, addr: a, addrClass: c}
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
func (p *Proxy) dialChecked(ctx context.Context, host string, port int, r reach) (net.Conn, error) {
	if port < 1 || port > 65535 {
		// The parsers refuse such ports; this keeps the conversion below exact.
		return nil, fmt.Errorf("port %d is out of range", port)
	}
	addrs, err := p.checkedAddrs(ctx, host, r)
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
// same guard, with the opt-ins of the rules for host:port.
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
	return p.dialChecked(ctx, host, port, p.pol.reachAllowed(host, port))
}

func defaultDialer(timeout time.Duration) DialFunc {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}
