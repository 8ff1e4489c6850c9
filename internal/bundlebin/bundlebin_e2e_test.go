//go:build e2e

package bundlebin

import (
	"bytes"
	"testing"
)

// The embedded binaries come back whole: static Linux ELF files of the
// architecture asked for. In the e2e build, as `make e2e` runs it after
// `make bundle-bins`, so they must be there.
func TestBinariesAreWhole(t *testing.T) {
	for _, arch := range Arches {
		for name, read := range map[string]func(string) ([]byte, error){"bundle": Binary, "probe": ProbeBinary} {
			bin, err := read(arch)
			if err != nil {
				t.Fatalf("%s %s: %v", name, arch, err)
			}
			if !bytes.HasPrefix(bin, []byte("\x7fELF")) || len(bin) < 1<<20 {
				t.Errorf("%s %s: %d bytes, not a whole ELF binary", name, arch, len(bin))
			}
		}
	}
	if _, err := Binary("riscv64"); err == nil {
		t.Error("an architecture the plugin carries nothing for gave a binary")
	}
}

// BenchmarkUnpack is what a process pays once to unpack the bundle binary
// from the compressed copy the plugin embeds (Binary caches it); the
// baseline is reading it as stored, which is what the plugin did before.
func BenchmarkUnpack(b *testing.B) {
	b.Run("gzip", func(b *testing.B) {
		for b.Loop() {
			if _, err := read(FileName("amd64"), "amd64"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stored", func(b *testing.B) {
		for b.Loop() {
			if _, err := bins.ReadFile("bin/" + FileName("amd64") + ".gz"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
