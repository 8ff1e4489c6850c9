//go:build e2e

package bringup

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/spec"
)

// thief is the engine with another bring-up beside it: right after each
// bundle container is created, and before it starts, it binds every host
// port chosen for the container that it can, as a parallel run would when
// the kernel gave it one of them, and keeps it.
type thief struct {
	Engine
	t     *testing.T
	stole []string
}

func (e *thief) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	res, err := e.Engine.ContainerCreate(ctx, o)
	if err != nil || o.HostConfig == nil {
		return res, err
	}
	for port, bindings := range o.HostConfig.PortBindings {
		for _, b := range bindings {
			l, err := net.Listen("tcp", net.JoinHostPort(b.HostIP.String(), b.HostPort))
			if err != nil {
				continue
			}
			e.t.Cleanup(func() { l.Close() })
			e.stole = append(e.stole, fmt.Sprintf("%s (for %s)", l.Addr(), port))
		}
	}
	return res, nil
}

// TestChosenHostPortsAreNotFreeBeforeTheBundleStarts: between choosing the
// bundle's host ports and the engine's bind at start (the stage is copied,
// the networks connected), nothing else on the host can take them, so a
// parallel bring-up neither takes them nor makes this one fail; the plan
// records the ports the bundle really publishes.
func TestChosenHostPortsAreNotFreeBeforeTheBundleStarts(t *testing.T) {
	eng := testenv.Engine(t)
	p := prepare(t, eng, uniqueName("bp"), spec.BackendDocker)
	e := &thief{Engine: eng, t: t}
	mounts, err := WriteConfig(p, ConfigOptions{CADir: caDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Up(context.Background(), e, Options{Plan: p, Mounts: mounts, CADir: caDir(p), Health: Health, Version: "test", Allocator: allocator(p, eng)})
	if len(e.stole) > 0 {
		t.Errorf("%d host ports chosen for bundles were free before they started, and were taken: %v", len(e.stole), e.stole[:min(3, len(e.stole))])
	}
	if err != nil {
		t.Fatalf("bring-up beside another: %v", err)
	}
	got, err := publishedPorts(context.Background(), eng, q.Bundle.Container)
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(int(got.Supervise)); q.Endpoints.HostSupervise != want {
		t.Errorf("the plan says the supervisor is at %s, the engine publishes it at %s", q.Endpoints.HostSupervise, want)
	}
	if err := Health(context.Background(), q); err != nil {
		t.Errorf("health: %v", err)
	}
}
