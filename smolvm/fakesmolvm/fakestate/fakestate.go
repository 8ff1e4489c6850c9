// Package fakestate is the on-disk state of the fake smolvm
// (smolvm/fakesmolvm): what `machine create` recorded, what `pack create`
// wrote into a .smolmachine, and where. Tests read it back to check exactly
// what docker bottle asked smolvm for (allowlist, env, volumes, labels,
// workload), which smolvm's own `ls --json` does not show.
package fakestate

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Environment variables the fake reads.
const (
	// EnvState is the fake's state directory (default
	// $HOME/.local/share/smolvm-fake).
	EnvState = "SMOLVM_FAKE_STATE"
	// EnvVersion is what `smolvm --version` prints (default DefaultVersion).
	EnvVersion = "SMOLVM_FAKE_VERSION"
	// EnvKVM simulates the host: "missing" or "denied" make start, run
	// and pack fail with smolvm's kvm errors; "noboot" makes them fail as
	// on a host whose hypervisor cannot boot the guest kernel.
	EnvKVM = "SMOLVM_FAKE_KVM"
)

// DefaultVersion is the smolvm release whose recorded behaviour the fake
// follows (smolvm/CONTRACT.md).
const DefaultVersion = "1.32.2"

// Dir returns the state directory the fake uses under the given
// environment lookup.
func Dir(getenv func(string) string) string {
	if d := getenv(EnvState); d != "" {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".local", "share", "smolvm-fake")
}

// Volume is one --volume.
type Volume struct {
	Host     string `json:"host"`
	Guest    string `json:"guest"`
	ReadOnly bool   `json:"read_only"`
}

// Record is everything `machine create` was given, plus the runtime state.
type Record struct {
	Name      string            `json:"name"`
	CreatedAt int64             `json:"created_at"`
	Labels    map[string]string `json:"labels"`
	From      string            `json:"from,omitempty"`  // absolute sidecar path
	Image     string            `json:"image,omitempty"` // --image, or the artifact's image ref
	CPUs      int               `json:"cpus"`
	MemoryMiB int               `json:"memory_mib"`
	StorageGB int               `json:"storage_gb"`
	OverlayGB int               `json:"overlay_gb"`
	// Env is the create -e list in order, NAME=VALUE (bare NAME resolved
	// from the host at create time, as smolvm does).
	Env                   []string `json:"env"`
	AllowHosts            []string `json:"allow_hosts"`
	AllowCIDRs            []string `json:"allow_cidrs"` // bare IPs become /32
	OutboundLocalhostOnly bool     `json:"outbound_localhost_only"`
	Volumes               []Volume `json:"volumes"`
	Ports                 []string `json:"ports"`
	Net                   bool     `json:"net"`
	NetBackend            string   `json:"net_backend,omitempty"`
	Network               bool     `json:"network"` // effective: net flags ORed with the manifest
	DNS                   string   `json:"dns,omitempty"`
	Init                  []string `json:"init"`
	Workdir               string   `json:"workdir,omitempty"` // -w as given (ignored with --from)
	User                  string   `json:"user,omitempty"`    // --user: the workload's and execs' user
	Workload              []string `json:"workload"`          // after --
	SSHAgent              bool     `json:"ssh_agent"`
	// Manifest is the artifact's manifest (with --from).
	Manifest *Manifest `json:"manifest,omitempty"`
	// Runtime state.
	Started      bool `json:"started"`       // started at least once
	PID          int  `json:"pid,omitempty"` // the fake VM process
	InitDone     bool `json:"init_done"`
	WorkloadPID  int  `json:"workload_pid,omitempty"`
	RootfsLoaded bool `json:"rootfs_loaded"`
}

// Manifest is the manifest.json entry of a fake .smolmachine.
type Manifest struct {
	Image         string   `json:"image"`
	Digest        string   `json:"digest"`
	Platform      string   `json:"platform"`
	HostPlatform  string   `json:"host_platform"`
	CPUs          int      `json:"cpus"`
	MemoryMiB     int      `json:"mem"`
	Network       bool     `json:"network"`
	Entrypoint    []string `json:"entrypoint"`
	Cmd           []string `json:"cmd"`
	Env           []string `json:"env"`
	Workdir       string   `json:"workdir"`
	Created       string   `json:"created"`
	SmolvmVersion string   `json:"smolvm_version"`
}

// The entries of a fake .smolmachine, an uncompressed tar in this order.
const (
	SidecarManifest = "manifest.json"
	SidecarRootfs   = "rootfs.tar" // the image's merged filesystem
)

// RecordPath is where the fake keeps a machine's record.
func RecordPath(stateDir, name string) string {
	return filepath.Join(stateDir, "machines", name+".json")
}

// DataDir is a machine's data directory, laid out like smolvm's
// (<state>/vms/<first 16 hex of sha256(name)>).
func DataDir(stateDir, name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(stateDir, "vms", hex.EncodeToString(sum[:])[:16])
}

// RootfsDir is where `machine start` extracts the artifact's filesystem.
func RootfsDir(stateDir, name string) string { return filepath.Join(DataDir(stateDir, name), "rootfs") }

// ErrNoMachine means there is no record of that name.
var ErrNoMachine = errors.New("no such fake smolvm machine")

// ReadRecord reads a machine's record.
func ReadRecord(stateDir, name string) (Record, error) {
	var r Record
	b, err := os.ReadFile(RecordPath(stateDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("%w: %s", ErrNoMachine, name)
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reading fake smolvm record %s: %w", name, err)
	}
	return r, nil
}

// ReadManifest reads the manifest of a fake .smolmachine.
func ReadManifest(sidecar string) (Manifest, error) {
	var m Manifest
	f, err := os.Open(sidecar)
	if err != nil {
		return m, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, fmt.Errorf("%s: no %s entry: not a .smolmachine written by the fake", sidecar, SidecarManifest)
		}
		if err != nil {
			return m, fmt.Errorf("%s: not a .smolmachine written by the fake: %w", sidecar, err)
		}
		if h.Name == SidecarManifest {
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return m, fmt.Errorf("%s: %s: %w", sidecar, SidecarManifest, err)
			}
			return m, nil
		}
	}
}

// OpenRootfs returns a reader positioned on the merged filesystem tar
// inside a fake .smolmachine.
func OpenRootfs(sidecar string) (io.ReadCloser, error) {
	f, err := os.Open(sidecar)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			f.Close()
			if err == io.EOF {
				err = fmt.Errorf("no %s entry", SidecarRootfs)
			}
			return nil, fmt.Errorf("%s: %w", sidecar, err)
		}
		if h.Name == SidecarRootfs {
			return struct {
				io.Reader
				io.Closer
			}{tr, f}, nil
		}
	}
}
