package bringup

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// TestHoldBindings: a restarted bundle keeps its free host ports, held
// until it starts, gets a free one for each that another process took,
// and keeps a binding the engine chooses; a taken host port the user gave
// for an agent port is named, not replaced.
func TestHoldBindings(t *testing.T) {
	listen := func() (net.Listener, string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l, strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	busy, taken := listen()
	defer busy.Close()
	l, free := listen()
	l.Close()
	bind := func(port string) []network.PortBinding {
		return []network.PortBinding{{HostIP: loopbackIP, HostPort: port}}
	}
	bindings := network.PortMap{proxyPort: bind(free), supervisePort: bind(taken), relayPort(0): bind("")}

	var held heldPorts
	defer held.release()
	p := plan.Plan{Slug: "b", Backend: spec.BackendDocker, Bundle: plan.BundlePlan{InternalNetwork: "n-internal"}}
	got, moved, err := holdBindings(p, bindings, &held)
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || strconv.Itoa(moved[0]) != taken {
		t.Errorf("moved %v, want [%s]", moved, taken)
	}
	if got[proxyPort][0].HostPort != free || got[relayPort(0)][0].HostPort != "" {
		t.Errorf("the free and the engine's bindings changed: %v", got)
	}
	sup := got[supervisePort][0].HostPort
	if sup == taken || sup == "" || !got[supervisePort][0].HostIP.IsLoopback() {
		t.Errorf("the taken supervisor port became %v", got[supervisePort])
	}
	if bindings[supervisePort][0].HostPort != taken {
		t.Errorf("the container's own bindings were changed")
	}
	// Until the bundle starts, no one else can bind them.
	for _, port := range []string{free, sup} {
		if l, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
			l.Close()
			t.Errorf("host port %s is free before the bundle starts", port)
		}
	}
	held.release()

	n, _ := strconv.Atoi(taken)
	p.Spec.Ports = []spec.Port{{Host: n, Agent: 3000}}
	_, _, err = holdBindings(p, network.PortMap{relayPort(0): bind(taken)}, &held)
	if err == nil || !strings.Contains(err.Error(), "host port "+taken+" for the agent's port 3000 of b is in use") {
		t.Errorf("a given host port taken: %v", err)
	}
}
