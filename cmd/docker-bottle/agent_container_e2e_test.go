//go:build e2e

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestAgentContainerIsHardened inspects the agent container a real `docker
// bottle run` made (docker backend) and the process inside it: read-only
// root, every capability dropped, no new privileges, an init as PID 1, the
// memory limit bottle.yaml asks for and a pids limit, no IPv6, a /tmp that
// takes no setuid files or devices, a non-root user (the stand-in for an
// image that runs as root), only the bottle's internal network, and no DNS
// but its own loopback. The settings are read back from the engine, not
// from the options the plugin meant to pass.
func TestAgentContainerIsHardened(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	base := testenv.Debian(t, eng)
	cfg := testenv.DockerConfig(t)
	name := dockerBottle(t, cfg, "hard", map[string]string{
		"Dockerfile": "FROM " + base + "\nENV HOME=/root\n",
		"bottle.yaml": "agent:\n  provider: shell\n  dockerfile: Dockerfile\n  command: [sh, -c, 'echo agent up; exec sleep 600']\n" +
			"resources:\n  memory: 768m\n",
	})
	waitLogs(t, cfg, nil, name, "agent up")

	ctx := context.Background()
	res, err := eng.ContainerInspect(ctx, "bottle-"+name+"-agent", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Container
	hc := c.HostConfig
	if !hc.ReadonlyRootfs {
		t.Error("the root filesystem is writable")
	}
	if len(hc.CapDrop) != 1 || strings.ToUpper(hc.CapDrop[0]) != "ALL" || len(hc.CapAdd) != 0 {
		t.Errorf("capabilities: drop %v, add %v", hc.CapDrop, hc.CapAdd)
	}
	nnp := false
	for _, o := range hc.SecurityOpt {
		nnp = nnp || o == "no-new-privileges:true" || o == "no-new-privileges"
	}
	if !nnp || hc.Privileged {
		t.Errorf("security options %v, privileged %v", hc.SecurityOpt, hc.Privileged)
	}
	if hc.Init == nil || !*hc.Init {
		t.Error("no init as PID 1")
	}
	if hc.Memory != 768<<20 || hc.PidsLimit == nil || *hc.PidsLimit <= 0 {
		t.Errorf("limits: memory %d (bottle.yaml says 768m), pids %v", hc.Memory, hc.PidsLimit)
	}
	if tmp := hc.Tmpfs["/tmp"]; !strings.Contains(tmp, "nosuid") || !strings.Contains(tmp, "nodev") {
		t.Errorf("/tmp tmpfs options %q", tmp)
	}
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if hc.Sysctls[k] != "1" {
			t.Errorf("sysctl %s = %q, want 1", k, hc.Sysctls[k])
		}
	}
	// The only writable mounts are the agent's own disk: the guest dir
	// is read-only, and nothing of the host is bound writable.
	for _, m := range c.Mounts {
		if m.RW && m.Type != "volume" {
			t.Errorf("a writable %s mount at %s (from %s)", m.Type, m.Destination, m.Source)
		}
		if m.Type == "volume" && !strings.HasPrefix(m.Name, "bottle-"+name+"-") {
			t.Errorf("a volume not of this bottle's disk: %s at %s", m.Name, m.Destination)
		}
	}
	if u := c.Config.User; u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("user %q", u)
	}
	if len(hc.DNS) != 1 || hc.DNS[0].String() != "127.0.0.1" {
		t.Errorf("DNS %v", hc.DNS)
	}
	if len(c.NetworkSettings.Networks) != 1 {
		t.Errorf("networks: %v", c.NetworkSettings.Networks)
	}
	for netName := range c.NetworkSettings.Networks {
		n, err := eng.NetworkInspect(ctx, netName, client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !n.Network.Internal {
			t.Errorf("network %s is not internal", netName)
		}
	}

	// What the agent's process has, seen from inside.
	e := docker(t, cfg, nil, "bottle", "exec", name, "--", "sh", "-c", "id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs):' /proc/self/status; touch /etc/x 2>&1; echo rc=$?")
	if e.code != 0 {
		t.Fatalf("exec: exit %d %q %q", e.code, e.stdout, e.stderr)
	}
	for _, want := range []string{"65534\n", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1", "Read-only file system"} {
		if !strings.Contains(e.stdout, want) {
			t.Errorf("inside the agent's container, no %q in:\n%s", want, e.stdout)
		}
	}
}
