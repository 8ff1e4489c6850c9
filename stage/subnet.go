package stage

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// DefaultPool is where bundle subnets come from unless
// DOCKER_BOTTLE_SUBNET_POOL (comma-separated CIDRs) says otherwise. It lies
// outside Docker's default address pools (172.17-31/16, 192.168/16).
const DefaultPool = "10.213.0.0/16"

// NetworkLister is the engine call the allocator needs.
type NetworkLister interface {
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
}

// Allocator hands out /24s from Pool that overlap no engine network, no
// host route and no other bottle's reservation. Reservations are files
// created with O_EXCL in Dir, so concurrent runs (even separate processes)
// never get the same subnet.
type Allocator struct {
	Pool   []netip.Prefix
	Dir    string
	Engine NetworkLister
	// Routes returns the host's routed prefixes; nil means read them from
	// the system.
	Routes func() ([]netip.Prefix, error)
	// Alive reports whether the owner of a reservation still exists; a
	// reservation of a gone owner is reclaimed. nil means always alive.
	Alive func(owner string) bool
}

// ParsePool reads a comma-separated list of CIDRs (IPv4, /24 or wider).
func ParsePool(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			return nil, fmt.Errorf("subnet pool entry %q must be an IPv4 CIDR of /24 or wider, e.g. 10.213.0.0/16", f)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("subnet pool %q is empty", s)
	}
	return out, nil
}

// PoolFromEnv returns DOCKER_BOTTLE_SUBNET_POOL, or DefaultPool.
func PoolFromEnv() ([]netip.Prefix, error) {
	if v := os.Getenv("DOCKER_BOTTLE_SUBNET_POOL"); v != "" {
		return ParsePool(v)
	}
	return ParsePool(DefaultPool)
}

// ErrPoolExhausted means every /24 of the pool is taken.
var ErrPoolExhausted = errors.New("no free /24 left in the bundle subnet pool")

// Reserve claims a free /24 for owner and records it in Dir.
func (a *Allocator) Reserve(ctx context.Context, owner string) (plan.Subnet, error) {
	return a.pick(ctx, owner, true)
}

// Peek returns the subnet Reserve would pick now, without claiming it
// (for --dry-run).
func (a *Allocator) Peek(ctx context.Context) (plan.Subnet, error) {
	return a.pick(ctx, "", false)
}

// Release drops the reservation of p when owner holds it.
func (a *Allocator) Release(p netip.Prefix, owner string) error {
	file := a.file(p)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) != owner {
		return nil
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("releasing subnet %s: %w", p, err)
	}
	return nil
}

func (a *Allocator) pick(ctx context.Context, owner string, claim bool) (plan.Subnet, error) {
	used, err := a.used(ctx)
	if err != nil {
		return plan.Subnet{}, err
	}
	if claim {
		if err := Ensure(a.Dir); err != nil {
			return plan.Subnet{}, fmt.Errorf("making the subnet reservation dir: %w", err)
		}
	}
	for _, pool := range a.Pool {
		for p := range each24(pool) {
			if overlapsAny(p, used) {
				continue
			}
			if !claim {
				if a.reserved(p) {
					continue
				}
				return plan.NewSubnet(p), nil
			}
			ok, err := a.claim(p, owner)
			if err != nil {
				return plan.Subnet{}, err
			}
			if ok {
				return plan.NewSubnet(p), nil
			}
		}
	}
	return plan.Subnet{}, fmt.Errorf("%w (%v): remove unused bottles with `docker bottle rm` or widen DOCKER_BOTTLE_SUBNET_POOL",
		ErrPoolExhausted, a.Pool)
}

// claim creates the reservation file; a stale one (owner gone) is removed
// and the claim retried once.
func (a *Allocator) claim(p netip.Prefix, owner string) (bool, error) {
	file := a.file(p)
	for attempt := 0; attempt < 2; attempt++ {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.WriteString(owner)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				// The claim is not whole; werr is what to report.
				_ = os.Remove(file)
				return false, fmt.Errorf("reserving subnet %s: %w", p, werr)
			}
			return true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("reserving subnet %s: %w", p, err)
		}
		if !a.stale(file) {
			return false, nil
		}
		// Another process may reclaim the same stale file; only one of
		// the following O_EXCL creates wins.
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("reclaiming subnet %s: %w", p, err)
		}
	}
	return false, nil
}

func (a *Allocator) reserved(p netip.Prefix) bool {
	_, err := os.Stat(a.file(p))
	return err == nil && !a.stale(a.file(p))
}

func (a *Allocator) stale(file string) bool {
	if a.Alive == nil {
		return false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	owner := strings.TrimSpace(string(data))
	// An empty file is a claim being written right now.
	return owner != "" && !a.Alive(owner)
}

func (a *Allocator) file(p netip.Prefix) string {
	return filepath.Join(a.Dir, strings.ReplaceAll(p.String(), "/", "_"))
}

// used gathers the prefixes no bundle subnet may overlap.
func (a *Allocator) used(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	if a.Engine != nil {
		res, err := a.Engine.NetworkList(ctx, client.NetworkListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing engine networks: %w", err)
		}
		for _, n := range res.Items {
			for _, c := range n.IPAM.Config {
				if c.Subnet.IsValid() {
					used = append(used, c.Subnet)
				}
			}
		}
	}
	routes := a.Routes
	if routes == nil {
		routes = HostRoutes
	}
	rs, err := routes()
	if err != nil {
		return nil, fmt.Errorf("reading host routes: %w", err)
	}
	return append(used, rs...), nil
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// each24 yields the /24s of pool in order.
func each24(pool netip.Prefix) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		base := pool.Masked().Addr().As4()
		start := binary.BigEndian.Uint32(base[:])
		n := uint32(1) << (24 - pool.Bits())
		for i := uint32(0); i < n; i++ {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], start+i<<8)
			if !yield(netip.PrefixFrom(netip.AddrFrom4(b), 24)) {
				return
			}
		}
	}
}

// HostRoutes returns the IPv4 prefixes the host routes or has addresses
// in, except the default route (which would overlap everything). On Linux
// it reads /proc/net/route; elsewhere interface addresses are all it has.
func HostRoutes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	f, err := os.Open("/proc/net/route")
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only
	rs, err := parseProcRoute(f)
	return append(out, rs...), err
}

func parseProcRoute(f *os.File) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := hexIPv4(fields[1])
		mask, err2 := hexIPv4(fields[7])
		if err1 != nil || err2 != nil {
			continue
		}
		bits, _ := net.IPMask(mask.AsSlice()).Size()
		if bits == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(dst, bits).Masked())
	}
	return out, sc.Err()
}

// hexIPv4 decodes /proc/net/route's little-endian hex addresses.
func hexIPv4(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad route field %q", s)
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), nil
}
