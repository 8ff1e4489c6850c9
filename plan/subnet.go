package plan

import "net/netip"

// Subnet is one bundle network: gateway .1 and the bundle pinned at .2.
// For the docker backend the /24 is split: the lower /25 is the bundle
// network, the upper /25 the internal network the agent shares with the
// bundle (gateway .129, bundle .130).
type Subnet struct {
	Prefix  netip.Prefix `json:"prefix"`
	Gateway netip.Addr   `json:"gateway"`
	Bundle  netip.Addr   `json:"bundle_ip"`
}

// NewSubnet derives gateway and bundle addresses from a prefix.
func NewSubnet(p netip.Prefix) Subnet {
	gw := p.Masked().Addr().Next()
	return Subnet{Prefix: p.Masked(), Gateway: gw, Bundle: gw.Next()}
}

// Halves splits a /24 into the bundle network and the internal network.
func (s Subnet) Halves() (bundle, internal Subnet) {
	base := s.Prefix.Masked().Addr()
	lo := netip.PrefixFrom(base, s.Prefix.Bits()+1)
	hiAddr := base
	for i := 0; i < 1<<(31-s.Prefix.Bits()); i++ {
		hiAddr = hiAddr.Next()
	}
	return NewSubnet(lo), NewSubnet(netip.PrefixFrom(hiAddr, s.Prefix.Bits()+1))
}
