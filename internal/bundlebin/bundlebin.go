// Package bundlebin carries the plugin's static Linux binaries, for amd64
// and arm64: the bundle's (its daemons and the helper in every agent image)
// and the probe's (the probe agent and stand-in hosts of `check`).
// Whatever the plugin runs on (macOS included), it can assemble their
// images for the engine's architecture. The Makefile builds the binaries
// into bin/ before it builds the plugin, gzip-compressed: four static
// binaries of about 9 MB each would make up most of the plugin, and gzip
// (a tool every build machine has, read back by the standard library)
// shrinks them to about 40% (docs/benchmarks.md).
package bundlebin

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

//go:embed bin
var bins embed.FS

// Arches are the architectures the plugin carries a bundle for.
var Arches = []string{"amd64", "arm64"}

// ErrMissing means the plugin was built without `make`.
var ErrMissing = errors.New("this docker-bottle was built without its bundle binaries")

// Binary returns the bundle binary for a linux architecture. The bytes are
// shared: callers must not change them.
func Binary(arch string) ([]byte, error) { return cached(FileName(arch), arch) }

// ProbeBinary returns the probe binary for a linux architecture, shared as
// Binary's.
func ProbeBinary(arch string) ([]byte, error) { return cached(ProbeFileName(arch), arch) }

var (
	mu       sync.Mutex
	unpacked = map[string][]byte{}
)

// cached unpacks a binary once per process: a run asks for the bundle
// binary for its image and again for the agent's helper.
func cached(name, arch string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if bin, ok := unpacked[name]; ok {
		return bin, nil
	}
	bin, err := read(name, arch)
	if err != nil {
		return nil, err
	}
	unpacked[name] = bin
	return bin, nil
}

func read(name, arch string) ([]byte, error) {
	data, err := bins.ReadFile("bin/" + name + ".gz")
	if errors.Is(err, fs.ErrNotExist) {
		known := false
		for _, a := range Arches {
			known = known || a == arch
		}
		if !known {
			return nil, fmt.Errorf("the engine runs on %s; bottles support linux/amd64 and linux/arm64 engines", arch)
		}
		return nil, fmt.Errorf("%w (linux/%s): build it with `make build` or `make install`", ErrMissing, arch)
	}
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the plugin's %s is damaged: %w (build it again with `make build`)", name, err)
	}
	bin, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("the plugin's %s is damaged: %w (build it again with `make build`)", name, err)
	}
	return bin, nil
}

// FileName is the name of the bundle binary for arch; bin/ holds it
// gzip-compressed, with ".gz" added.
func FileName(arch string) string { return "bottle-bundle-linux-" + arch }

// ProbeFileName is the name of the probe binary for arch; bin/ holds it
// gzip-compressed, with ".gz" added.
func ProbeFileName(arch string) string { return "bottle-probe-linux-" + arch }
