package bringup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strconv"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/bundle/relay"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// The relay's pool (docker backend): published ports of a running
// container cannot change, so the bundle publishes RelayPool ports from
// the start, each on 127.0.0.1, and a port published later
// (`docker bottle port NAME PORT`) takes a free slot of the pool. A slot the
// relay map does not name refuses every connection.
const (
	RelayPoolBase = 21000
	RelayPool     = 8
	// RelayMapFile is the relay map in the stage dir (relay.Map).
	RelayMapFile = "relay-ports.json"
)

// ErrNoSlot means every slot of the relay pool is taken.
var ErrNoSlot = fmt.Errorf("a bottle publishes at most %d ports; remove one with a new bottle, or publish fewer", RelayPool)

func relayPort(i int) network.Port {
	return network.MustParsePort(strconv.Itoa(RelayPoolBase+i) + "/tcp")
}

// relayConfig is the relay's part of the bundle configuration.
func relayConfig(p plan.Plan, written func(string) string) relay.Config {
	c := relay.Config{Bottle: p.Slug, MapFile: StageMount + "/" + RelayMapFile, AuditFile: written("audit-relay.jsonl")}
	if !relayed(p) {
		return c
	}
	for i := range RelayPool {
		c.Listen = append(c.Listen, ":"+strconv.Itoa(RelayPoolBase+i))
	}
	return c
}

// relayBindings are the relay pool's bindings: a declared port's own host
// port when it gives one, else a free one on the host's loopback; each
// held in held.
func relayBindings(p plan.Plan, held *heldPorts) (network.PortSet, network.PortMap, error) {
	if !relayed(p) {
		return nil, nil, nil
	}
	if len(p.Spec.Ports) > RelayPool {
		return nil, nil, ErrNoSlot
	}
	set, pm := network.PortSet{}, network.PortMap{}
	for i := range RelayPool {
		host := 0
		if i < len(p.Spec.Ports) {
			host = p.Spec.Ports[i].Host
		}
		// A given host port is tried first, so that one in use is named
		// rather than found by the engine, whose refusal bring-up would
		// take for a race and retry.
		got, err := held.hold(host)
		if err != nil {
			if host != 0 {
				return nil, nil, fmt.Errorf("host port %d for the agent's port %d is in use on 127.0.0.1: choose another, or give only %d for a free one", host, p.Spec.Ports[i].Agent, p.Spec.Ports[i].Agent)
			}
			return nil, nil, fmt.Errorf("finding a free port on 127.0.0.1 for the relay: %w", err)
		}
		set[relayPort(i)] = struct{}{}
		pm[relayPort(i)] = []network.PortBinding{{HostIP: loopbackIP, HostPort: strconv.Itoa(int(got))}}
	}
	return set, pm, nil
}

// ContainerInspector is what reading the published ports asks of the
// engine.
type ContainerInspector interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	StageCopier
}

// Published is one agent port reachable on the host.
type Published struct {
	Agent int    `json:"agent"`
	Host  string `json:"host"` // 127.0.0.1:PORT
}

// String writes p as `docker port` does.
func (p Published) String() string { return strconv.Itoa(p.Agent) + "/tcp -> " + p.Host }

// writeRelayMap writes the relay map of the published slots.
func writeRelayMap(ctx context.Context, e StageCopier, p plan.Plan, slots map[int]int) error {
	m := relay.Map{}
	for slot, agent := range slots {
		m[strconv.Itoa(RelayPoolBase+slot)] = net.JoinHostPort(p.AgentHost(), strconv.Itoa(agent))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := WriteStageFile(ctx, e, p, RelayMapFile, b, 0o600); err != nil {
		return fmt.Errorf("writing the relay map: %w", err)
	}
	return nil
}

// readSlots reads which pool slot publishes which agent port.
func readSlots(ctx context.Context, e StageCopier, p plan.Plan) (map[int]int, error) {
	b, err := ReadStageFile(ctx, e, p, RelayMapFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	m := relay.Map{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("the relay map of %s: %w", p.Slug, err)
		}
	}
	slots := map[int]int{}
	for k, v := range m {
		port, err1 := strconv.Atoi(k)
		_, a, err2 := net.SplitHostPort(v)
		agent, err3 := strconv.Atoi(a)
		if err := errors.Join(err1, err2, err3); err != nil || port < RelayPoolBase || port >= RelayPoolBase+RelayPool {
			return nil, fmt.Errorf("the relay map of %s names %q: %q, which is not a pool port and an agent port", p.Slug, k, v)
		}
		slots[port-RelayPoolBase] = agent
	}
	return slots, nil
}

// Ports lists the agent ports a running docker-backend bottle publishes,
// by agent port; agent limits the list to that port (0: all).
func Ports(ctx context.Context, e ContainerInspector, p plan.Plan, agent int) ([]Published, error) {
	if !relayed(p) {
		return nil, nil
	}
	slots, err := readSlots(ctx, e, p)
	if err != nil {
		return nil, err
	}
	res, err := e.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting the bundle of %s: %w", p.Slug, err)
	}
	if res.Container.NetworkSettings == nil {
		return nil, fmt.Errorf("the bundle of %s is not running: start it with docker bottle start %s", p.Slug, p.Slug)
	}
	var out []Published
	for slot, a := range slots {
		if agent != 0 && a != agent {
			continue
		}
		for _, b := range res.Container.NetworkSettings.Ports[relayPort(slot)] {
			out = append(out, Published{Agent: a, Host: net.JoinHostPort("127.0.0.1", b.HostPort)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out, nil
}

// Publish makes agent port reachable on the host through a free slot of
// the running bundle's relay pool, and returns where; a port already
// published is returned as it is. host, when not 0, must be the slot's
// host port: the pool's host ports were fixed at bring-up.
func Publish(ctx context.Context, e ContainerInspector, p plan.Plan, port spec.Port) (Published, error) {
	if p.ThroughEngine() {
		return Published{}, fmt.Errorf("%s goes through the engine (a remote engine), whose loopback this machine cannot reach, so its bundle publishes no port: "+
			"run the bottle on a local context (`docker --context default bottle run -p ...`) to reach the agent's ports", p.Slug)
	}
	if !relayed(p) {
		return Published{}, fmt.Errorf("%s runs on %s, whose ports are fixed when the machine is made: publish them with docker bottle run -p", p.Slug, p.Backend)
	}
	if msg := spec.CheckPorts([]spec.Port{port}); len(msg) > 0 {
		return Published{}, errors.New(msg[0])
	}
	slots, err := readSlots(ctx, e, p)
	if err != nil {
		return Published{}, err
	}
	for _, a := range slots {
		if a == port.Agent {
			got, err := Ports(ctx, e, p, a)
			if err != nil || len(got) == 0 {
				return Published{}, fmt.Errorf("port %d of %s is in the relay map but not published: %v", a, p.Slug, err)
			}
			return got[0], nil
		}
	}
	if port.Host != 0 {
		return Published{}, fmt.Errorf("host port %d: a running bottle's host ports were chosen when it started; publish %d without a host port (docker bottle port %s %d) and use the port it prints", port.Host, port.Agent, p.Slug, port.Agent)
	}
	free := -1
	for i := range RelayPool {
		if _, taken := slots[i]; !taken {
			free = i
			break
		}
	}
	if free < 0 {
		return Published{}, ErrNoSlot
	}
	slots[free] = port.Agent
	if err := writeRelayMap(ctx, e, p, slots); err != nil {
		return Published{}, err
	}
	got, err := Ports(ctx, e, p, port.Agent)
	if err != nil || len(got) == 0 {
		return Published{}, fmt.Errorf("publishing port %d of %s: %v", port.Agent, p.Slug, err)
	}
	return got[0], nil
}

// relayed says whether the bundle relays the agent's ports: an agent on an
// internal network (the docker backend's) is reached only through it; a
// microVM publishes its ports itself. A bundle reached through the engine
// publishes no port: on a remote engine it would be on that host's
// loopback.
func relayed(p plan.Plan) bool { return p.Bundle.InternalNetwork != "" && !p.ThroughEngine() }
