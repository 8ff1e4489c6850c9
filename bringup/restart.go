package bringup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// Restart starts p's stopped bundle container again on the host ports it
// was made with, held until the engine binds them as at bring-up. When
// another process took one of them meanwhile, the engine could not start
// it: the container is made again with a free port in place of each taken
// one, everything else as it was (image, config, mounts, networks and
// pinned addresses, labels); the stage, the volumes and the agent are
// not touched. A host port the user gave for an agent port is not
// replaced: the error names it. The caller reads the published ports back
// (Reconnect). step, when not nil, says when ports change.
func Restart(ctx context.Context, e Engine, p plan.Plan, step func(string)) error {
	for attempt := 1; ; attempt++ {
		err := restartOnce(ctx, e, p, step)
		// A port taken between its release and the engine's bind is found
		// taken at the next attempt.
		if err == nil || !errors.Is(err, errPortTaken) || attempt == maxPortAttempts {
			return err
		}
	}
}

func restartOnce(ctx context.Context, e Engine, p plan.Plan, step func(string)) error {
	if err := restoreAside(ctx, e, p); err != nil {
		return fmt.Errorf("putting back the bundle of %s that an interrupted start left aside: %w", p.Slug, err)
	}
	res, err := e.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting the bundle of %s: %w", p.Slug, err)
	}
	c := res.Container
	id := c.ID
	var held heldPorts
	defer held.release()
	// A running bundle's ports are its own, bound by the engine: start
	// leaves it as it is.
	stopped := c.State == nil || !c.State.Running && !c.State.Restarting && !c.State.Paused
	if stopped && c.HostConfig != nil && c.Config != nil {
		bindings, moved, err := holdBindings(p, c.HostConfig.PortBindings, &held)
		if err != nil {
			return err
		}
		if len(moved) > 0 {
			if step != nil {
				step("host ports " + fmt.Sprint(moved) + " of the bundle are taken: making it again with others")
			}
			if id, err = remake(ctx, e, p, c, bindings); err != nil {
				return fmt.Errorf("making the bundle of %s again on free host ports: %w", p.Slug, err)
			}
		}
	}
	held.release()
	if _, err := e.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the bundle of %s: %w", p.Slug, addressTaken(err))
	}
	return nil
}

// holdBindings holds the host ports of bindings (a container's) and
// returns them with a free port, also held, in place of each one that is
// taken, and the ports it replaced.
func holdBindings(p plan.Plan, bindings network.PortMap, held *heldPorts) (network.PortMap, []int, error) {
	out := network.PortMap{}
	var moved []int
	for port, bs := range bindings {
		for _, b := range bs {
			n, err := strconv.Atoi(b.HostPort)
			if err != nil || n == 0 {
				// The engine chooses; nothing was fixed.
				out[port] = append(out[port], b)
				continue
			}
			if _, err := held.hold(n); err != nil {
				if agent, given := givenHostPort(p, port, n); given {
					return nil, nil, fmt.Errorf("host port %d for the agent's port %d of %s is in use on 127.0.0.1: stop what uses it, then start the bottle again", n, agent, p.Slug)
				}
				got, err := held.hold(0)
				if err != nil {
					return nil, nil, fmt.Errorf("finding a free port on 127.0.0.1 for the bundle: %w", err)
				}
				moved = append(moved, n)
				b.HostPort = strconv.Itoa(int(got))
			}
			out[port] = append(out[port], b)
		}
	}
	slices.Sort(moved)
	return out, moved, nil
}

// givenHostPort reports whether host is the host port bottle.yaml or -p
// gave for the agent port that the relay publishes on port, and which.
func givenHostPort(p plan.Plan, port network.Port, host int) (int, bool) {
	for i, sp := range p.Spec.Ports {
		if i < RelayPool && relayPort(i) == port && sp.Host == host {
			return sp.Agent, true
		}
	}
	return 0, false
}

// asideName is where remake keeps the old bundle container until its
// replacement is made.
func asideName(p plan.Plan) string { return p.Bundle.Container + "-replaced" }

// restoreAside undoes a remake that did not finish (the plugin was killed
// during a start): the old container, kept aside, is the bundle again, and
// a replacement that may lack its networks goes. Without one aside it
// does nothing.
func restoreAside(ctx context.Context, e Engine, p plan.Plan) error {
	aside, err := e.ContainerInspect(ctx, asideName(p), client.ContainerInspectOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if aside.Container.Config == nil || aside.Container.Config.Labels[plan.LabelBottle] != p.Slug {
		return fmt.Errorf("a container named %s exists and is not this bottle's: remove or rename it", asideName(p))
	}
	if _, err := e.ContainerRemove(ctx, p.Bundle.Container, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return err
	}
	_, err = e.ContainerRename(ctx, aside.Container.ID, client.ContainerRenameOptions{NewName: p.Bundle.Container})
	return err
}

// remake replaces the stopped container c, p's bundle, by one made as it
// was but with bindings, and returns the new one's ID. The old container is
// renamed aside until the new one is made, and comes back if it cannot be.
func remake(ctx context.Context, e Engine, p plan.Plan, c container.InspectResponse, bindings network.PortMap) (string, error) {
	aside := asideName(p)
	if _, err := e.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: aside}); err != nil {
		return "", err
	}
	cfg, hc := *c.Config, *c.HostConfig
	// The old hostname is the old container's ID.
	cfg.Hostname = ""
	hc.PortBindings = bindings
	res, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{Name: p.Bundle.Container, Config: &cfg, HostConfig: &hc,
		NetworkingConfig: bundleEndpoint(p)})
	if err == nil {
		err = connectInternal(ctx, e, p, res.ID)
	}
	if err != nil {
		_, rerr := e.ContainerRemove(ctx, p.Bundle.Container, client.ContainerRemoveOptions{Force: true})
		if rerr != nil && !isNotFound(rerr) {
			return "", errors.Join(err, rerr)
		}
		_, rerr = e.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: p.Bundle.Container})
		return "", errors.Join(err, rerr)
	}
	if _, err := e.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
		return "", fmt.Errorf("removing the bundle's old container %s: %w", aside, err)
	}
	return res.ID, nil
}
