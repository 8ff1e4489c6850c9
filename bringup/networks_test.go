package bringup

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// networkEngine records the networks created; nothing else is called.
type networkEngine struct {
	Engine
	created []string
}

func (e *networkEngine) NetworkCreate(_ context.Context, name string, _ client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	e.created = append(e.created, name)
	return client.NetworkCreateResult{}, nil
}

// TestCreateNetworksFollowsThePlan: bring-up makes the networks the plan
// names, whatever the backend: the internal network is there when the
// plan has one (the docker backend's plan does), and not otherwise; no
// backend name is looked at.
func TestCreateNetworksFollowsThePlan(t *testing.T) {
	sub := netip.MustParsePrefix("10.213.0.0/25")
	internal := netip.MustParsePrefix("10.213.0.128/25")
	for _, c := range []struct {
		name string
		p    plan.Plan
		want []string
	}{
		{"docker", plan.Plan{Backend: "docker", Bundle: plan.BundlePlan{Network: "n", Subnet: sub, InternalNetwork: "n-internal", InternalSubnet: internal}},
			[]string{"n", "n-internal"}},
		{"smolvm", plan.Plan{Backend: "smolvm", Bundle: plan.BundlePlan{Network: "n", Subnet: sub}}, []string{"n"}},
		{"a third backend with an internal network", plan.Plan{Backend: "third",
			Bundle: plan.BundlePlan{Network: "n", Subnet: sub, InternalNetwork: "n-internal", InternalSubnet: internal}},
			[]string{"n", "n-internal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &networkEngine{}
			labels := func(string) map[string]string { return nil }
			if step, err := createNetworks(context.Background(), e, c.p, labels, func(string) {}); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if !slices.Equal(e.created, c.want) {
				t.Errorf("created %v, want %v", e.created, c.want)
			}
		})
	}
}
