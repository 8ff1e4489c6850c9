// Package bringup brings a bottle's bundle up on the engine of the current
// context and takes it down again: the bundle image (assembled locally, never
// pulled), the bundle network with the planned subnet, the docker backend's
// internal network, and the hardened bundle container with its three ports
// published on the host's loopback. Everything it makes is labelled, and a
// failure or an interrupt removes what was made.
package bringup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
	"github.com/docker-bottle/docker-bottle/staticimage"
)

// Where the stage dir is mounted in the bundle, and the bundle's config
// file in it.
const (
	StageMount = "/stage"
	ConfigFile = "bundle.json"
)

// Engine is what bring-up and teardown ask of the engine.
type Engine interface {
	staticimage.Engine
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkConnect(ctx context.Context, networkID string, options client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	NetworkRemove(ctx context.Context, networkID string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerRename(ctx context.Context, containerID string, options client.ContainerRenameOptions) (client.ContainerRenameResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerLogs(ctx context.Context, containerID string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, volumeID string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
	StageCopier
	SecretSender
}

// Mount is a host file or dir the bundle needs besides the stage dir (the
// CA key, the host's CA roots), always read-only; copied into the stage
// volume when the stage is on the engine.
type Mount struct {
	Source, Target string
}

// Options say how to bring the bundle up.
type Options struct {
	Plan   plan.Plan
	Mounts []Mount
	// Health reports nil once all three daemons answer healthy at the
	// published ports.
	Health func(ctx context.Context, p plan.Plan) error
	// HealthTimeout bounds the wait (default 30s).
	HealthTimeout time.Duration
	// Version labels what this plugin version made.
	Version string
	// Allocator, when set, gives another subnet when the planned one was
	// taken since prepare.
	Allocator *stage.Allocator
	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// Limits of the bundle container.
	Memory    int64
	PidsLimit int64
	// Getenv reads the host's environment for the secrets the bundle is
	// sent; nil means os.Getenv. CADir holds the CA whose key it is sent.
	Getenv func(string) string
	CADir  string
}

// Error is a failed bring-up: which step failed, and the bundle's own last
// log lines when it ran at all.
type Error struct {
	Step string
	Err  error
	Logs string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("bundle bring-up failed while %s: %v", e.Step, e.Err)
	if e.Logs != "" {
		msg += "\nlast lines of the bundle's log:\n" + e.Logs
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Container ports of the three daemons.
var (
	proxyPort     = network.MustParsePort(strconv.Itoa(plan.ProxyPort) + "/tcp")
	gatePort      = network.MustParsePort(strconv.Itoa(plan.GatePort) + "/tcp")
	supervisePort = network.MustParsePort(strconv.Itoa(plan.SupervisePort) + "/tcp")
)

// Up brings the bundle of p up and returns p completed with the bundle's
// endpoints. On any error, including an interrupt (ctx cancelled), it
// removes whatever it made before returning.
func Up(ctx context.Context, e Engine, o Options) (_ plan.Plan, err error) {
	p := o.Plan
	defer func() {
		if err != nil {
			// A fresh context: ctx may be the cancelled one.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if derr := Down(cctx, e, p.Slug); derr != nil {
				err = fmt.Errorf("%w (and cleaning up failed: %v)", err, derr)
			}
		}
	}()
	step := func(s string) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bundle: %s\n", s)
		}
	}

	step("preparing the bundle image")
	tag, err := EnsureImage(ctx, e)
	if err != nil {
		return p, &Error{Step: "preparing the bundle image", Err: err}
	}
	labels := func(role string) map[string]string {
		return map[string]string{
			plan.LabelBottle: p.Slug, plan.LabelRole: role, plan.LabelVersion: o.Version, plan.LabelBackend: p.Backend,
		}
	}

	// The engine refuses overlapping networks, which makes network
	// creation the authoritative claim of a subnet: when another engine
	// user (another DOCKER_CONFIG, another tool) took the planned one since
	// prepare, or the engine has not yet released the addresses of a
	// network just removed, move to the next free subnet and start over.
	// A host port that someone else takes in the instant between the
	// release of its hold and the engine's bind at start (placeBundle) is
	// retried on a budget of its own: other ports, the same subnet.
	var id string
	for subnetAttempt, portAttempt := 1, 1; ; {
		var failed *Error
		id, failed = placeBundle(ctx, e, p, tag, o, labels, step)
		if failed == nil {
			break
		}
		if errors.Is(failed.Err, errPortTaken) && portAttempt < maxPortAttempts {
			portAttempt++
			if err := Down(ctx, e, p.Slug); err != nil {
				return p, &Error{Step: failed.Step, Err: err}
			}
			step("choosing other host ports: " + failed.Err.Error())
			continue
		}
		if !errors.Is(failed.Err, errSubnetTaken) || o.Allocator == nil || subnetAttempt == maxSubnetAttempts {
			return p, failed
		}
		subnetAttempt++
		if err := Down(ctx, e, p.Slug); err != nil {
			return p, &Error{Step: failed.Step, Err: err}
		}
		sub, rerr := o.Allocator.Reserve(ctx, p.Slug)
		if rerr != nil {
			return p, &Error{Step: "reserving another subnet", Err: rerr}
		}
		o.Allocator.Release(p.Bundle.Reserved, p.Slug) //nolint:errcheck // if it stays, it is reclaimed once this bottle is gone
		p = p.WithSubnet(sub.Prefix)
		step("moving to subnet " + p.Bundle.Subnet.String() + ": " + failed.Err.Error())
	}

	// Published ports are known only after start; a bundle reached
	// through the engine publishes none.
	ports, err := bundlePorts(ctx, e, id, p)
	if err != nil {
		return p, &Error{Step: "reading the published ports", Err: err, Logs: Logs(context.Background(), e, id, 20)}
	}
	p = p.WithEndpoints(ports)
	if relayed(p) {
		slots := map[int]int{}
		for i, port := range p.Spec.Ports {
			slots[i] = port.Agent
		}
		if err := writeRelayMap(ctx, e, p, slots); err != nil {
			return p, &Error{Step: "publishing the agent's ports", Err: err}
		}
		pubs, err := Ports(ctx, e, p, 0)
		if err != nil {
			return p, &Error{Step: "publishing the agent's ports", Err: err}
		}
		for _, pub := range pubs {
			step("publishing the agent's port " + pub.String())
		}
	}

	if o.Health != nil {
		step("waiting for the proxy, the gate and the supervisor")
		timeout := o.HealthTimeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err := waitHealthy(hctx, e, id, p, o.Health)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return p, &Error{Step: "waiting for the bundle to become healthy", Err: err, Logs: Logs(context.Background(), e, id, 20)}
		}
	}
	if p.ThroughEngine() {
		step("up: proxy, gate and supervisor reached through the engine")
	} else {
		step("up: proxy " + p.Endpoints.HostProxy + ", gate " + p.Endpoints.HostGitGate + ", supervisor " + p.Endpoints.HostSupervise)
	}
	return p, nil
}

// bundlePorts is publishedPorts of a bundle that publishes its ports, and
// none for one reached through the engine, whose loopback may be another
// host's.
func bundlePorts(ctx context.Context, e Engine, id string, p plan.Plan) (plan.HostPorts, error) {
	if p.ThroughEngine() {
		return plan.HostPorts{}, nil
	}
	return publishedPorts(ctx, e, id)
}

// placeBundle makes the networks and the bundle container on p's subnet
// and starts it. The host ports chosen for the container stay bound by
// this process until just before the engine publishes them at start: while
// the stage is copied and the networks connected, no other bring-up on
// this host (a parallel run) can be given them.
func placeBundle(ctx context.Context, e Engine, p plan.Plan, tag string, o Options, labels func(string) map[string]string, step func(string)) (string, *Error) {
	if s, err := createNetworks(ctx, e, p, labels, step); err != nil {
		return "", &Error{Step: s, Err: err}
	}
	step("creating container " + p.Bundle.Container)
	var held heldPorts
	defer held.release()
	id, err := createContainer(ctx, e, p, tag, o, labels, &held)
	if err != nil {
		return "", &Error{Step: "creating the bundle container", Err: err}
	}
	if p.Bundle.StageOnEngine {
		step("copying the stage to the engine")
		if err := fillStage(ctx, e, id, p, o.Mounts); err != nil {
			return id, &Error{Step: "copying the stage to the engine", Err: err}
		}
	}
	if err := connectInternal(ctx, e, p, id); err != nil {
		return id, &Error{Step: "connecting the bundle to the internal network", Err: addressTaken(err)}
	}
	step("starting the bundle")
	held.release()
	if _, err := e.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return id, &Error{Step: "starting the bundle container", Err: addressTaken(err), Logs: Logs(ctx, e, id, 20)}
	}
	if err := SendSecrets(ctx, e, p, o.CADir, o.Getenv); err != nil {
		// A bundle that could not start (a bad configuration) has gone
		// before it could take them: say that, not how the exec failed.
		if res, ierr := e.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); ierr == nil {
			switch st := res.Container.State; {
			case st != nil && (!st.Running || st.Restarting):
				err = fmt.Errorf("the bundle exited with code %d before it took its secrets", st.ExitCode)
			case res.Container.RestartCount > 0:
				// Already running again after the engine restarted it
				// (its exit code is gone with the restart).
				err = fmt.Errorf("the bundle exited, and was restarted %d times, before it took its secrets", res.Container.RestartCount)
			case bundleGone(err):
				// The exec found it stopped or restarting; the inspect
				// came between its exit and the restart's count.
				err = fmt.Errorf("the bundle exited before it took its secrets: %w", err)
			}
		}
		return id, &Error{Step: "sending the secrets to the bundle", Err: err, Logs: Logs(ctx, e, id, 20)}
	}
	return id, nil
}

// bundleGone reports whether an exec into the bundle failed because its
// container had stopped or was restarting (the engine's words).
func bundleGone(err error) bool {
	m := err.Error()
	return strings.Contains(m, "stopped container") || strings.Contains(m, "is restarting") || strings.Contains(m, "is not running")
}

// connectInternal connects the bundle container id to the internal
// network, when the plan has one, at its pinned address: API < 1.44 takes
// one network at create, so the internal one is connected before start.
func connectInternal(ctx context.Context, e Engine, p plan.Plan, id string) error {
	if p.Bundle.InternalNetwork == "" {
		return nil
	}
	_, err := e.NetworkConnect(ctx, p.Bundle.InternalNetwork, client.NetworkConnectOptions{
		Container: id,
		EndpointConfig: &network.EndpointSettings{
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: p.Bundle.InternalIP},
		},
	})
	return err
}

// bundleEndpoint puts the bundle container on the bundle network at its
// pinned address.
func bundleEndpoint(p plan.Plan) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		p.Bundle.Network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: p.Bundle.IP}},
	}}
}

// addressTaken marks the engine's refusal of a pinned address that is
// still in use (a network of the same subnet was just removed) as a taken
// subnet, so that bring-up moves on; and its refusal of a host port that
// another process took since it was chosen as a taken port.
func addressTaken(err error) error {
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "port is already allocated"), strings.Contains(err.Error(), "bind: address already in use"):
		return fmt.Errorf("%w: %v", errPortTaken, err)
	case strings.Contains(err.Error(), "Address already in use"):
		return fmt.Errorf("%w: %v", errSubnetTaken, err)
	}
	return err
}

var loopbackIP = netip.MustParseAddr("127.0.0.1")

// errPortTaken means a host port chosen for the bundle was taken before
// the bundle started.
var errPortTaken = errors.New("a host port chosen for the bundle was taken meanwhile")

// heldPorts are host ports chosen for the bundle and still bound by this
// process. Host ports are chosen here rather than by the engine, which
// would give new ones at each restart (createContainer); a port chosen and
// let go at once would be free for anyone until the engine binds it at
// start, and the kernel could give it to a parallel run's bring-up too.
type heldPorts []net.Listener

// hold binds port on the host's loopback (0: a free one) and returns it.
func (h *heldPorts) hold(port int) (uint16, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopbackIP.String(), strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	*h = append(*h, l)
	return uint16(l.Addr().(*net.TCPAddr).Port), nil //nolint:gosec // G115: a bound TCP port, below 65536
}

// release lets the ports go, for the engine to bind.
func (h *heldPorts) release() {
	for _, l := range *h {
		l.Close()
	}
	*h = nil
}

// freePorts picks three free ports on the host's loopback for the
// bundle's daemons, held in h.
func freePorts(h *heldPorts) (plan.HostPorts, error) {
	var ports [3]uint16
	for i := range ports {
		port, err := h.hold(0)
		if err != nil {
			return plan.HostPorts{}, fmt.Errorf("finding free ports on 127.0.0.1 for the bundle: %w", err)
		}
		ports[i] = port
	}
	return plan.HostPorts{Proxy: ports[0], Gate: ports[1], Supervise: ports[2]}, nil
}

// maxPortAttempts bounds how often bring-up chooses other host ports.
const maxPortAttempts = 5

// maxSubnetAttempts bounds how often bring-up moves to another subnet.
const maxSubnetAttempts = 5

// errSubnetTaken means the engine already has a network overlapping the
// planned subnet.
var errSubnetTaken = errors.New("the planned subnet overlaps a network the engine already has")

// createNetworks makes the bundle network and the internal one when the
// plan has one (the backend that needs it, docker, asks for it in the
// plan); it returns the step it was at.
func createNetworks(ctx context.Context, e Engine, p plan.Plan, labels func(string) map[string]string, step func(string)) (string, error) {
	step("creating network " + p.Bundle.Network + " (" + p.Bundle.Subnet.String() + ")")
	if err := createNetwork(ctx, e, p.Bundle.Network, p.Bundle.Subnet, p.Bundle.Gateway, false, labels(plan.RoleBundleNetwork)); err != nil {
		return "creating the bundle network", err
	}
	if p.Bundle.InternalNetwork != "" {
		internal := plan.NewSubnet(p.Bundle.InternalSubnet)
		step("creating internal network " + p.Bundle.InternalNetwork + " (" + internal.Prefix.String() + ")")
		if err := createNetwork(ctx, e, p.Bundle.InternalNetwork, internal.Prefix, internal.Gateway, true, labels(plan.RoleInternalNetwork)); err != nil {
			return "creating the internal network", err
		}
	}
	return "", nil
}

func createNetwork(ctx context.Context, e Engine, name string, subnet netip.Prefix, gw netip.Addr, internal bool, labels map[string]string) error {
	var opts map[string]string
	if internal {
		// The host gets no address on the internal bridge, so the agent
		// cannot reach host services through it; the agent and the bundle
		// still share the bridge.
		opts = map[string]string{"com.docker.network.bridge.inhibit_ipv4": "true"}
	}
	_, err := e.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Options:  opts,
		Driver:   "bridge",
		Internal: internal,
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{
			Subnet:  subnet,
			Gateway: gw,
			// Dynamic addresses start above the pinned ones.
			IPRange: netip.PrefixFrom(subnet.Addr(), subnet.Bits()+1),
		}}},
		Labels: labels,
	})
	if err != nil && strings.Contains(err.Error(), "overlap") {
		return fmt.Errorf("%w (%s): %v", errSubnetTaken, subnet, err)
	}
	return err
}

// createContainer creates the bundle container, its host ports chosen and
// held in held until the caller starts it.
func createContainer(ctx context.Context, e Engine, p plan.Plan, image string, o Options, labels func(string) map[string]string, held *heldPorts) (string, error) {
	memory, pids := o.Memory, o.PidsLimit
	if memory == 0 {
		memory = 512 << 20
	}
	if pids == 0 {
		pids = 256
	}
	mounts := stageMounts(p, labels)
	tmpfs := map[string]string{"/tmp": "rw,noexec,nosuid,size=64m", SecretsMount: secretsTmpfs()}
	if !p.Bundle.StageOnEngine {
		for _, m := range o.Mounts {
			mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: true})
		}
	}
	exposed, bindings, err := bundleBindings(p, held)
	if err != nil {
		return "", err
	}
	user, _, _ := bundleUser()
	res, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: p.Bundle.Container,
		Config: &container.Config{
			Image:        image,
			User:         user,
			Labels:       labels(plan.RoleBundle),
			ExposedPorts: exposed,
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(p.Bundle.Network),
			// Host ports chosen here rather than by the engine, which
			// would give new ones at each restart: a restarted bundle is
			// where the agent (loopback mode) and the plan expect it.
			PortBindings:   bindings,
			Mounts:         mounts,
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			Tmpfs:          tmpfs,
			Resources:      container.Resources{Memory: memory, PidsLimit: &pids},
			// A bundle whose process dies (a crash, an OOM kill) is
			// restarted, a bounded number of times: after that it stays
			// down and the bottle is failed (bringup.Inspect, ls).
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: MaxRestarts},
		},
		NetworkingConfig: bundleEndpoint(p),
	})
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// bundleBindings are the ports the bundle publishes on the host's
// loopback: its three services and the relay pool, or none when it is
// reached through the engine (plan.Plan.ThroughEngine).
func bundleBindings(p plan.Plan, held *heldPorts) (network.PortSet, network.PortMap, error) {
	if p.ThroughEngine() {
		return nil, nil, nil
	}
	hp, err := freePorts(held)
	if err != nil {
		return nil, nil, err
	}
	bind := func(port uint16) []network.PortBinding {
		return []network.PortBinding{{HostIP: loopbackIP, HostPort: strconv.Itoa(int(port))}}
	}
	exposed, bindings := network.PortSet{proxyPort: {}, gatePort: {}, supervisePort: {}},
		network.PortMap{proxyPort: bind(hp.Proxy), gatePort: bind(hp.Gate), supervisePort: bind(hp.Supervise)}
	relayExposed, relayBound, err := relayBindings(p, held)
	if err != nil {
		return nil, nil, err
	}
	maps.Copy(exposed, relayExposed)
	maps.Copy(bindings, relayBound)
	return exposed, bindings, nil
}

func publishedPorts(ctx context.Context, e interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}, id string) (plan.HostPorts, error) {
	res, err := e.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return plan.HostPorts{}, err
	}
	// A bundle that exited may already be restarting (its restart policy):
	// the engine then calls it running, with no ports bound.
	if st := res.Container.State; st != nil && (!st.Running || st.Restarting) {
		return plan.HostPorts{}, fmt.Errorf("the bundle exited with code %d", st.ExitCode)
	}
	if res.Container.NetworkSettings == nil {
		return plan.HostPorts{}, errors.New("the engine reports no network settings for the bundle")
	}
	ports := res.Container.NetworkSettings.Ports
	get := func(p network.Port) (uint16, error) {
		for _, b := range ports[p] {
			if b.HostIP.IsLoopback() || !b.HostIP.IsValid() {
				n, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err == nil && n != 0 {
					return uint16(n), nil
				}
			}
		}
		return 0, fmt.Errorf("port %s is not published on 127.0.0.1 (bindings %v)", p, ports[p])
	}
	var hp plan.HostPorts
	if hp.Proxy, err = get(proxyPort); err != nil {
		return hp, err
	}
	if hp.Gate, err = get(gatePort); err != nil {
		return hp, err
	}
	hp.Supervise, err = get(supervisePort)
	return hp, err
}

// waitHealthy polls health until it passes, the container exits, or ctx
// ends.
func waitHealthy(ctx context.Context, e Engine, id string, p plan.Plan, health func(context.Context, plan.Plan) error) error {
	var last error
	// The daemons are usually up within tens of milliseconds: ask often at
	// first, then back off.
	wait := 5 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = health(cctx, p)
		cancel()
		if last == nil {
			return nil
		}
		res, err := e.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if st := res.Container.State; err == nil && st != nil && (!st.Running || st.Restarting) {
			return fmt.Errorf("the bundle exited with code %d", st.ExitCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last health answer: %v)", ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// Logs returns the last n lines of a container's output, for error
// messages; "" when there are none.
func Logs(ctx context.Context, e Engine, id string, n int) string {
	rc, err := e.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	r := io.LimitReader(rc, 64<<10)
	// A container with a TTY (a detached agent) logs one raw stream.
	if res, ierr := e.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); ierr == nil && res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(&out, r)
	} else {
		_, err = stdcopy.StdCopy(&out, &out, r)
	}
	if err != nil {
		return ""
	}
	return strings.TrimRight(out.String(), "\n")
}

// Reconnect reads a started bundle's published ports again (a restart
// gives new ones), waits until health (as Up's Options.Health) says it is
// healthy, and returns the plan with its endpoints updated.
func Reconnect(ctx context.Context, e Engine, p plan.Plan, timeout time.Duration, health func(context.Context, plan.Plan) error) (plan.Plan, error) {
	ports, err := bundlePorts(ctx, e, p.Bundle.Container, p)
	if err != nil {
		return p, &Error{Step: "reading the published ports", Err: err, Logs: Logs(context.Background(), e, p.Bundle.Container, 20)}
	}
	q := p.WithEndpoints(ports)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitHealthy(hctx, e, p.Bundle.Container, q, health); err != nil {
		return p, &Error{Step: "waiting for the bundle to become healthy", Err: err, Logs: Logs(context.Background(), e, p.Bundle.Container, 20)}
	}
	return q, nil
}
