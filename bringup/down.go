package bringup

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// Down removes every container and network labelled with the bottle's
// name: the bundle, the agent container of the docker backend, and their
// networks. It is idempotent: what is already gone is not an error.
func Down(ctx context.Context, e Engine, slug string) error {
	f := make(client.Filters).Add("label", plan.LabelBottle+"="+slug)
	cs, err := e.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing the bottle's containers: %w", err)
	}
	var errs []error
	for _, c := range cs.Items {
		if _, err := e.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID[:12], err))
		}
	}
	// The agent's disks, once no container uses them.
	vs, err := e.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing the bottle's volumes: %w", err))
	} else {
		for _, v := range vs.Items {
			if _, err := e.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
			}
		}
	}
	ns, err := e.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing the bottle's networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if _, err := e.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
