package bringup

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

func TestRelayBindings(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().(*net.TCPAddr).Port
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	p := plan.Plan{Backend: spec.BackendDocker, Bundle: plan.BundlePlan{InternalNetwork: "n-internal"}}
	p.Spec.Ports = []spec.Port{{Agent: 3000}, {Host: free, Agent: 5173}}
	var held heldPorts
	defer held.release()
	set, pm, err := relayBindings(p, &held)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != RelayPool || len(pm) != RelayPool {
		t.Fatalf("%d exposed, %d bound, want the pool of %d", len(set), len(pm), RelayPool)
	}
	for i := range RelayPool {
		b := pm[relayPort(i)]
		if len(b) != 1 || !b[0].HostIP.IsLoopback() || b[0].HostPort == "" || b[0].HostPort == "0" {
			t.Errorf("slot %d bound %v, want one port on 127.0.0.1", i, b)
		}
	}
	if got := pm[relayPort(1)][0].HostPort; got != strconv.Itoa(free) {
		t.Errorf("the given host port %d went to %s", free, got)
	}
	// Until the bundle starts, no one else can bind them.
	for i := range RelayPool {
		if l, err := net.Listen("tcp", "127.0.0.1:"+pm[relayPort(i)][0].HostPort); err == nil {
			l.Close()
			t.Errorf("slot %d's host port %s is free before the bundle starts", i, pm[relayPort(i)][0].HostPort)
		}
	}
	held.release()

	p.Spec.Ports = []spec.Port{{Host: taken, Agent: 3000}}
	if _, _, err := relayBindings(p, &held); err == nil || !strings.Contains(err.Error(), "is in use on 127.0.0.1") {
		t.Errorf("a host port in use: %v", err)
	}
	p.Spec.Ports = make([]spec.Port, RelayPool+1)
	if _, _, err := relayBindings(p, &held); err != ErrNoSlot {
		t.Errorf("more ports than the pool: %v", err)
	}
	if set, pm, err := relayBindings(plan.Plan{Backend: spec.BackendSmolvm}, &held); set != nil || pm != nil || err != nil {
		t.Errorf("smolvm publishes through the relay: %v %v %v", set, pm, err)
	}
}
