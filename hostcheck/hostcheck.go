// Package hostcheck finds out what the host and the engine of the current
// docker context look like, for `docker bottle doctor` and for choosing a
// backend at run time.
package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// SmolvmProbe finds smolvm and its version.
type SmolvmProbe func(ctx context.Context) plan.SmolvmFacts

// Gather collects the facts Choose and doctor need. It never fails: what it
// cannot find out is recorded as such.
func Gather(ctx context.Context, dockerCli command.Cli, smolvm SmolvmProbe) plan.Facts {
	return plan.Facts{
		HostOS:     runtime.GOOS,
		HostArch:   runtime.GOARCH,
		Engine:     Engine(ctx, dockerCli),
		Smolvm:     smolvm(ctx),
		Hypervisor: Hypervisor(runtime.GOOS, runtime.GOARCH, "/dev/kvm"),
	}
}

// EngineAPI is what Engine asks of the engine.
type EngineAPI interface {
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
}

// Engine describes the engine of the current context.
func Engine(ctx context.Context, dockerCli command.Cli) plan.EngineFacts {
	f := plan.EngineFacts{Context: dockerCli.CurrentContext(), Endpoint: dockerCli.DockerEndpoint().Host}
	f.Remote = IsRemote(f.Endpoint)
	describeEngine(ctx, dockerCli.Client(), &f)
	return f
}

func describeEngine(ctx context.Context, api EngineAPI, f *plan.EngineFacts) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		f.Error = err.Error()
		return
	}
	f.Reachable = true
	f.Version, f.APIVersion, f.OS, f.Arch = v.Version, v.APIVersion, v.Os, v.Arch
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return
	}
	f.Host = info.Info.Name
	f.Desktop = info.Info.OperatingSystem == "Docker Desktop"
	f.Rootless = slices.ContainsFunc(info.Info.SecurityOptions, func(o string) bool {
		return strings.Contains(o, "name=rootless")
	})
}

// EnvThroughEngine is the one test-only switch that makes the plugin treat
// a local engine as remote: set to 1, a new docker-backend bottle goes
// through the engine as on a remote engine (its stage in volumes on the
// engine, its bundle's supervisor, gate and proxy reached through the
// engine API, no port published, its git remote bottle::NAME, which
// git-remote-bottle fetches through the engine). Tests and benchmarks prove
// those paths with it on the local engine. The bottle's plan records the
// choice (plan.Plan.ThroughEngine), so its later commands follow the plan
// whatever this switch says then. It holds no secret.
const EnvThroughEngine = "DOCKER_BOTTLE_TEST_THROUGH_ENGINE"

// ThroughEngine says whether a new bottle on the engine at endpoint goes
// through the engine API rather than the stage dir's bind mounts and the
// ports the bundle publishes on the engine host's loopback: on a remote
// engine that disk and loopback are not the client's (or when
// EnvThroughEngine asks).
func ThroughEngine(endpoint string) bool {
	return IsRemote(endpoint) || os.Getenv(EnvThroughEngine) == "1"
}

// IsRemote reports whether a docker endpoint is on another host: ssh://
// always, tcp:// unless it names a loopback address.
func IsRemote(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix", "npipe", "fd", "":
		return false
	case "tcp", "http", "https":
		host := u.Hostname()
		if host == "localhost" {
			return false
		}
		ip := net.ParseIP(host)
		return ip == nil || !ip.IsLoopback()
	default:
		return true
	}
}

// Hypervisor says whether a microVM can run: /dev/kvm readable and writable
// on Linux, Apple silicon on macOS.
func Hypervisor(goos, goarch, kvm string) plan.HypervisorFacts {
	switch goos {
	case "linux":
		f, err := os.OpenFile(kvm, os.O_RDWR, 0)
		switch {
		case err == nil:
			f.Close() //nolint:errcheck // opened only to test access
			return plan.HypervisorFacts{Usable: true, Detail: kvm + " is readable and writable"}
		case errors.Is(err, fs.ErrNotExist):
			return plan.HypervisorFacts{Detail: kvm + " does not exist: enable virtualization and load the kvm module (modprobe kvm_intel or kvm_amd)"}
		case errors.Is(err, fs.ErrPermission):
			return plan.HypervisorFacts{Detail: kvm + " is not readable and writable for this user: sudo usermod -aG kvm $USER, then log in again"}
		default:
			return plan.HypervisorFacts{Detail: fmt.Sprintf("%s cannot be opened: %v", kvm, err)}
		}
	case "darwin":
		if goarch == "arm64" {
			return plan.HypervisorFacts{Usable: true, Detail: "Apple silicon (Hypervisor.framework)"}
		}
		return plan.HypervisorFacts{Detail: "smolvm needs Apple silicon on macOS; Intel Macs can use --backend docker"}
	default:
		return plan.HypervisorFacts{Detail: "smolvm does not support " + goos + " here; use --backend docker"}
	}
}

// Writable checks that dir can be made (0700) and written.
func Writable(dir string) error {
	if err := stage.Ensure(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(filepath.Clean(name)))
}
