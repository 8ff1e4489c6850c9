// Package pack is the pack step of the image pipeline: `smolvm pack create`
// from a registry reference into the artifact cache, with registry
// credentials handed to smolvm through a temporary SMOLVM_CONFIG. The smolvm
// CLI itself is behind the Packer interface (smolvm-cli.md, section 1).
package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker-bottle/docker-bottle/smolvm"
)

// Request is one `smolvm pack create --image IMAGE -o OUTPUT`.
type Request struct {
	// Image is a registry reference, by digest, whose registry part is
	// host:port or a domain (never `localhost/...`: smolvm would read
	// that as a Docker Hub repository).
	Image string
	// Output is the stub executable's path; smolvm writes the artifact
	// to Output + ".smolmachine". It must not end in ".smolmachine".
	Output string
	// Platform is --oci-platform (os/arch).
	Platform string
	// NoProxy is --no-proxy: the in-VM pull must reach 127.0.0.1 directly.
	NoProxy []string
	// Env is added to smolvm's environment: SMOLVM_CONFIG and the
	// variable its password_env names. Secrets go nowhere else.
	Env []string
	// Stderr receives smolvm's progress lines.
	Stderr io.Writer
}

// Packer runs smolvm. The smolvm package's CLI satisfies it through a small
// adapter; tests use the contract fake.
type Packer interface {
	// Version is smolvm's version (X.Y.Z), part of the artifact key.
	Version(ctx context.Context) (string, error)
	// PackCreate runs `smolvm pack create` and returns an error that
	// keeps smolvm's `Error: ...` line.
	PackCreate(ctx context.Context, req Request) error
}

// Validate applies smolvm's rules for pack create (smolvm-cli.md §1, §2).
func (r Request) Validate() error {
	if r.Image == "" {
		return errors.New("pack: no image reference")
	}
	if err := smolvm.ValidateImageRef(r.Image); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	first, _, ok := strings.Cut(r.Image, "/")
	if !ok || !strings.ContainsAny(first, ".:") {
		return fmt.Errorf("pack: %q has no registry host with a dot or port; smolvm would pull it from Docker Hub", r.Image)
	}
	if first == "localhost" || strings.HasPrefix(first, "localhost:") {
		return fmt.Errorf("pack: use 127.0.0.1 rather than localhost in %q (crane inside smolvm treats them differently)", r.Image)
	}
	if r.Output == "" {
		return errors.New("pack: no output path")
	}
	if strings.HasSuffix(r.Output, smolvm.SidecarSuffix) {
		return fmt.Errorf("pack: output %q must name the stub, not the .smolmachine file", r.Output)
	}
	return nil
}

// ArtifactPath is the .smolmachine file a pack to output writes.
func ArtifactPath(output string) string { return output + smolvm.SidecarSuffix }
