package plan

import (
	"errors"
	"fmt"

	"github.com/docker-bottle/docker-bottle/spec"
)

// Facts are what the host and engine look like; doctor prints them and
// Choose decides from them. Gathering them is the plugin's job.
type Facts struct {
	HostOS   string      `json:"host_os"`
	HostArch string      `json:"host_arch"`
	Engine   EngineFacts `json:"engine"`
	Smolvm   SmolvmFacts `json:"smolvm"`
	// Hypervisor: /dev/kvm read-write on Linux, Apple silicon on macOS.
	Hypervisor HypervisorFacts `json:"hypervisor"`
}

// EngineFacts describe the engine of the current docker context.
type EngineFacts struct {
	Context    string `json:"context"`
	Endpoint   string `json:"endpoint"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
	Version    string `json:"version,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	OS         string `json:"os,omitempty"`
	Arch       string `json:"arch,omitempty"`
	Desktop    bool   `json:"desktop"`
	Rootless   bool   `json:"rootless"`
	Remote     bool   `json:"remote"`
	// Host is the name the engine gives its machine (docker info's Name):
	// on a remote context, which machine doctor judged.
	Host string `json:"host,omitempty"`
}

// SmolvmFacts describe the smolvm binary found, if any.
type SmolvmFacts struct {
	Path    string `json:"path,omitempty"`
	Found   bool   `json:"found"`
	Version string `json:"version,omitempty"`
	// Error says why smolvm cannot be used (missing, too old, not smolvm).
	Error string `json:"error,omitempty"`
	// Warning says what is degraded (older than recommended).
	Warning string `json:"warning,omitempty"`
}

// HypervisorFacts say whether a microVM can run here.
type HypervisorFacts struct {
	Usable bool   `json:"usable"`
	Detail string `json:"detail"`
	// BootChecked says a test microVM was booted (or its recent verdict
	// reused); Boots is its outcome and BootDetail says how it went or
	// what smolvm said. /dev/kvm can open and still refuse to run a guest
	// kernel (a nested or paravirtualised KVM): only a boot shows it.
	BootChecked bool   `json:"boot_checked"`
	Boots       bool   `json:"boots"`
	BootDetail  string `json:"boot_detail,omitempty"`
}

// Choice is the backend and network mode a run will use, and why.
type Choice struct {
	Backend     string `json:"backend"`
	NetworkMode string `json:"network_mode"`
	Why         string `json:"why"`
}

// NetworkInternal is the docker backend's only network mode: the agent
// container sits on an internal network with the bundle.
const NetworkInternal = "internal"

// ErrCannotRun wraps every reason no backend can run.
var ErrCannotRun = errors.New("cannot run a bottle here")

// SmolvmUsable reports whether the smolvm backend can run, and if not why.
func (f Facts) SmolvmUsable() (bool, string) {
	switch {
	case f.Engine.Remote:
		// smolvm has no remote mode: its machine would run here while the
		// bundle it must reach runs on the engine's host.
		return false, fmt.Sprintf("smolvm runs the machine on this client, and the engine of context %q is on another host (%s)",
			f.Engine.Context, f.Engine.Endpoint)
	case !f.Smolvm.Found:
		return false, "smolvm was not found"
	case f.Smolvm.Error != "":
		return false, f.Smolvm.Error
	case !f.Hypervisor.Usable:
		return false, f.Hypervisor.Detail
	case f.Hypervisor.BootChecked && !f.Hypervisor.Boots:
		return false, "no microVM boots here: " + f.Hypervisor.BootDetail
	}
	return true, ""
}

// Choose decides the backend and network mode for the requested values
// (auto or explicit), and refuses what cannot run here. On a remote engine
// only the docker backend runs (SmolvmUsable says why), and auto picks it.
func Choose(f Facts, backend, networkMode string) (Choice, error) {
	e := f.Engine
	switch {
	case !e.Reachable:
		return Choice{}, fmt.Errorf("%w: no Docker engine answers through context %q (%s); start Docker or pick a context with `docker context use`",
			ErrCannotRun, e.Context, e.Error)
	case e.OS != "" && e.OS != "linux":
		return Choice{}, fmt.Errorf("%w: the engine runs %s containers; bottles need a Linux engine", ErrCannotRun, e.OS)
	}
	if backend == "" {
		backend = spec.BackendAuto
	}
	smolOK, smolWhy := f.SmolvmUsable()
	var c Choice
	switch backend {
	case spec.BackendSmolvm:
		if !smolOK {
			remedy := "use --backend docker for a hardened container"
			if e.Remote {
				remedy = "use --backend docker there, or a local context for the microVM backend"
			}
			return Choice{}, fmt.Errorf("%w with --backend smolvm: %s; %s", ErrCannotRun, smolWhy, remedy)
		}
		c = Choice{Backend: spec.BackendSmolvm, Why: "requested"}
	case spec.BackendDocker:
		c = Choice{Backend: spec.BackendDocker, NetworkMode: NetworkInternal, Why: "requested"}
	case spec.BackendAuto:
		if smolOK {
			c = Choice{Backend: spec.BackendSmolvm, Why: "smolvm " + f.Smolvm.Version + " and a hypervisor are available"}
		} else {
			c = Choice{Backend: spec.BackendDocker, NetworkMode: NetworkInternal,
				Why: "the microVM backend is unavailable (" + smolWhy + "), so a hardened container is used"}
		}
	default:
		return Choice{}, fmt.Errorf("backend %q is not one of auto, smolvm, docker", backend)
	}
	if c.Backend == spec.BackendDocker {
		if networkMode != "" && networkMode != spec.NetworkAuto {
			return Choice{}, fmt.Errorf("--network-mode %s applies to the smolvm backend only; the docker backend always uses an internal network",
				networkMode)
		}
		return c, nil
	}

	// The host can route to a bridge IP only with a rootful engine running
	// on this very Linux host.
	routable := f.HostOS == "linux" && !e.Desktop && !e.Rootless
	why := "the host can route to the engine's bridge networks (rootful local Linux engine)"
	if !routable {
		switch {
		case e.Desktop:
			why = "Docker Desktop runs the engine in its own VM, so only its published loopback ports are reachable"
		case e.Rootless:
			why = "a rootless engine's networks live in its own namespace, so only its published loopback ports are reachable"
		default:
			why = "the engine's bridge networks are not routable from this " + f.HostOS + " host"
		}
	}
	switch networkMode {
	case "", spec.NetworkAuto:
		if routable {
			c.NetworkMode = spec.NetworkBridge
		} else {
			c.NetworkMode = spec.NetworkLoopback
		}
	case spec.NetworkBridge:
		if !routable {
			return Choice{}, fmt.Errorf("%w with --network-mode bridge: %s; use --network-mode loopback", ErrCannotRun, why)
		}
		c.NetworkMode = spec.NetworkBridge
		why = "requested"
	case spec.NetworkLoopback:
		c.NetworkMode = spec.NetworkLoopback
		why = "requested"
	default:
		return Choice{}, fmt.Errorf("network mode %q is not one of auto, bridge, loopback", networkMode)
	}
	c.Why += "; network mode " + c.NetworkMode + ": " + why
	if c.NetworkMode == spec.NetworkLoopback {
		c.Why += " (the guest can reach every port on the host's loopback, not only the bundle's: each bundle service demands the bottle's token)"
	}
	return c, nil
}
