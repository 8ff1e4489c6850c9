// Package bundlebin carries the plugin's static Linux binaries, for amd64
// and arm64: the bundle's (its daemons and the helper in every agent image)
// and the probe's (the probe agent and stand-in hosts of `check`).
// Whatever the plugin runs on (macOS included), it can assemble their
// images for the engine's architecture. The Makefile builds the binaries
// into bin/ before it builds the plugin.
package bundlebin

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

//go:embed bin
var bins embed.FS

// Arches are the architectures the plugin carries a bundle for.
var Arches = []string{"amd64", "arm64"}

// ErrMissing means the plugin was built without `make`.
var ErrMissing = errors.New("this docker-bottle was built without its bundle binaries")

// Binary returns the bundle binary for a linux architecture.
func Binary(arch string) ([]byte, error) { return read(FileName(arch), arch) }

// ProbeBinary returns the probe binary for a linux architecture.
func ProbeBinary(arch string) ([]byte, error) { return read(ProbeFileName(arch), arch) }

func read(name, arch string) ([]byte, error) {
	data, err := bins.ReadFile("bin/" + name)
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
	return data, err
}

// FileName is the name of the bundle binary for arch in bin/.
func FileName(arch string) string { return "bottle-bundle-linux-" + arch }

// ProbeFileName is the name of the probe binary for arch in bin/.
func ProbeFileName(arch string) string { return "bottle-probe-linux-" + arch }
