package plan

import (
	"errors"
	"strings"
	"testing"
)

func facts() Facts {
	return Facts{
		HostOS: "linux", HostArch: "amd64",
		Engine:     EngineFacts{Context: "default", Endpoint: "unix:///var/run/docker.sock", Reachable: true, OS: "linux"},
		Smolvm:     SmolvmFacts{Found: true, Version: "1.9.3", Path: "/usr/bin/smolvm"},
		Hypervisor: HypervisorFacts{Usable: true, Detail: "/dev/kvm is readable and writable"},
	}
}

func TestChooseAuto(t *testing.T) {
	f := facts()
	c, err := Choose(f, "auto", "auto")
	if err != nil || c.Backend != "smolvm" || c.NetworkMode != "bridge" {
		t.Fatalf("rootful linux with smolvm: %+v %v", c, err)
	}

	f.Engine.Desktop = true
	c, _ = Choose(f, "", "")
	if c.NetworkMode != "loopback" || !strings.Contains(c.Why, "Docker Desktop") || !strings.Contains(c.Why, "every port") {
		t.Errorf("desktop: %+v", c)
	}
	f.Engine.Desktop, f.Engine.Rootless = false, true
	if c, _ = Choose(f, "", ""); c.NetworkMode != "loopback" {
		t.Errorf("rootless: %+v", c)
	}

	f = facts()
	f.Smolvm = SmolvmFacts{}
	c, err = Choose(f, "auto", "auto")
	if err != nil || c.Backend != "docker" || c.NetworkMode != NetworkInternal || !strings.Contains(c.Why, "smolvm was not found") {
		t.Fatalf("no smolvm: %+v %v", c, err)
	}
	f = facts()
	f.Smolvm.Error = "smolvm 1.7.5 is too old"
	if c, _ = Choose(f, "auto", ""); c.Backend != "docker" || !strings.Contains(c.Why, "too old") {
		t.Errorf("old smolvm: %+v", c)
	}
	f = facts()
	f.Hypervisor = HypervisorFacts{Detail: "/dev/kvm: permission denied"}
	if c, _ = Choose(f, "auto", ""); c.Backend != "docker" || !strings.Contains(c.Why, "permission denied") {
		t.Errorf("no kvm: %+v", c)
	}
}

func TestChooseRefusals(t *testing.T) {
	cases := []struct {
		name             string
		mod              func(*Facts)
		backend, network string
		text             string
	}{
		{"no engine", func(f *Facts) { f.Engine.Reachable = false; f.Engine.Error = "connection refused" }, "auto", "", "no Docker engine answers"},
		{"smolvm on a remote engine", func(f *Facts) { f.Engine.Remote = true; f.Engine.Endpoint = "ssh://u@h" }, "smolvm", "", "another host"},
		{"windows engine", func(f *Facts) { f.Engine.OS = "windows" }, "docker", "", "Linux engine"},
		{"smolvm missing", func(f *Facts) { f.Smolvm = SmolvmFacts{} }, "smolvm", "", "--backend docker"},
		{"bridge on desktop", func(f *Facts) { f.Engine.Desktop = true }, "smolvm", "bridge", "--network-mode loopback"},
		{"network mode with docker", func(*Facts) {}, "docker", "loopback", "smolvm backend only"},
		{"bad backend", func(*Facts) {}, "vm", "", "not one of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := facts()
			c.mod(&f)
			_, err := Choose(f, c.backend, c.network)
			if err == nil || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.text)
			}
		})
	}
	f := facts()
	f.Engine.Remote = true
	if _, err := Choose(f, "smolvm", ""); !errors.Is(err, ErrCannotRun) {
		t.Errorf("smolvm on a remote engine is not ErrCannotRun: %v", err)
	}
}

// smolvm runs its machine on the client: on a remote engine it is refused
// with that reason, and auto picks docker with it, even where smolvm and a
// hypervisor are here.
func TestSmolvmIsNotPickedOnARemoteEngine(t *testing.T) {
	f := facts()
	f.Engine.Remote, f.Engine.Context, f.Engine.Endpoint = true, "big", "ssh://me@buildbox"
	_, err := Choose(f, "smolvm", "")
	if !errors.Is(err, ErrCannotRun) || !strings.Contains(err.Error(), "smolvm runs the machine on this client") ||
		!strings.Contains(err.Error(), `context "big" is on another host`) || !strings.Contains(err.Error(), "--backend docker") {
		t.Errorf("--backend smolvm on a remote engine: %v", err)
	}
	c, err := Choose(f, "auto", "auto")
	if err != nil || c.Backend != "docker" || c.NetworkMode != NetworkInternal || !strings.Contains(c.Why, "smolvm runs the machine on this client") {
		t.Errorf("auto on a remote engine: %+v %v", c, err)
	}
	if c, err := Choose(f, "docker", ""); err != nil || c.Backend != "docker" {
		t.Errorf("--backend docker on a remote engine: %+v %v", c, err)
	}
	f.Engine.Remote = false
	if c, err := Choose(f, "auto", "auto"); err != nil || c.Backend != "smolvm" {
		t.Errorf("auto on the local engine: %+v %v", c, err)
	}
}

func TestChooseExplicitLoopbackOnLinux(t *testing.T) {
	c, err := Choose(facts(), "smolvm", "loopback")
	if err != nil || c.NetworkMode != "loopback" {
		t.Fatalf("%+v %v", c, err)
	}
}
