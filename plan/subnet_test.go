package plan

import (
	"net/netip"
	"testing"
)

func TestHalves(t *testing.T) {
	b, i := NewSubnet(netip.MustParsePrefix("10.9.4.0/24")).Halves()
	if b.Prefix.String() != "10.9.4.0/25" || b.Gateway.String() != "10.9.4.1" || b.Bundle.String() != "10.9.4.2" {
		t.Errorf("bundle half %+v", b)
	}
	if i.Prefix.String() != "10.9.4.128/25" || i.Gateway.String() != "10.9.4.129" || i.Bundle.String() != "10.9.4.130" {
		t.Errorf("internal half %+v", i)
	}
}
