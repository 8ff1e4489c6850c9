package smolvm

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// SidecarSuffix is what smolvm appends to the stub path for the sidecar
// that `machine create --from` reads.
const SidecarSuffix = ".smolmachine"

// PackOptions is `smolvm pack create --image REF -o OUT`.
type PackOptions struct {
	// Image is a registry reference. smolvm pulls it inside a VM with
	// crane: plain HTTP only for 127.0.0.1:PORT-style registries, no docker
	// credentials (see Config).
	Image string
	// Output names the stub executable; the sidecar is Output+".smolmachine".
	// It must not itself end in .smolmachine.
	Output     string
	Platform   string // --oci-platform OS/ARCH; empty: the host's
	CPUs       int    // manifest default; 0: smolvm's (4)
	MemoryMiB  int    // manifest default; 0: smolvm's (8192)
	Entrypoint string // one argv element, no splitting
	// NoProxy goes to --no-proxy (e.g. "127.0.0.1", "localhost") so the pull
	// from a loopback registry never goes through a proxy.
	NoProxy []string
	// Config is a smolvm settings file (SMOLVM_CONFIG) holding registry
	// credentials; ConfigEnv carries the variables its password_env entries
	// name. Both apply to this run only.
	Config    string
	ConfigEnv []string
}

// Artifact is what PackCreate wrote.
type Artifact struct {
	Stub    string // the executable stub (not needed by --from)
	Sidecar string // Stub + ".smolmachine", for CreateOptions.From
}

// PackCreate packs a registry image into a .smolmachine artifact.
func (c *CLI) PackCreate(ctx context.Context, o PackOptions) (Artifact, error) {
	op := fmt.Sprintf("packing image %s with smolvm", o.Image)
	if err := ValidateImageRef(o.Image); err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", op, err)
	}
	if o.Output == "" {
		return Artifact{}, fmt.Errorf("%s: %w: no output path", op, ErrInvalidOption)
	}
	if strings.HasSuffix(o.Output, SidecarSuffix) {
		return Artifact{}, fmt.Errorf("%s: %w: the output %s names the stub, not the sidecar; use %s (smolvm adds %s)",
			op, ErrInvalidOption, o.Output, strings.TrimSuffix(o.Output, SidecarSuffix), SidecarSuffix)
	}
	out, err := filepath.Abs(o.Output)
	if err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", op, err)
	}
	args := []string{"pack", "create", "--image", o.Image, "--output", out}
	if o.Platform != "" {
		args = append(args, "--oci-platform", o.Platform)
	}
	if o.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(o.CPUs))
	}
	if o.MemoryMiB > 0 {
		args = append(args, "--mem", strconv.Itoa(o.MemoryMiB))
	}
	if o.Entrypoint != "" {
		args = append(args, "--entrypoint", o.Entrypoint)
	}
	if len(o.NoProxy) > 0 {
		args = append(args, "--no-proxy", strings.Join(o.NoProxy, ","))
	}
	var env []string
	if o.Config != "" {
		env = append(env, "SMOLVM_CONFIG="+o.Config)
	}
	env = append(env, o.ConfigEnv...)
	if _, err := c.run(ctx, invocation{op: op, args: args, env: env}); err != nil {
		return Artifact{}, err
	}
	return Artifact{Stub: out, Sidecar: out + SidecarSuffix}, nil
}

// ValidateImageRef applies the guest agent's check (smolvm-cli.md section
// 1): the first character alphanumeric, the rest in [A-Za-z0-9._/:@-]. So
// `-`, ./x.tar, /abs, OCI layouts and docker-daemon: refs never reach smolvm.
func ValidateImageRef(ref string) error {
	if ref == "" || !isAlnum(ref[0]) {
		return fmt.Errorf("%w: image reference %q must start with a letter or digit (smolvm packs registry images only: push the image to a registry first)", ErrInvalidOption, ref)
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if !isAlnum(c) && !strings.ContainsRune("._/:@-", rune(c)) {
			return fmt.Errorf("%w: image reference %q holds %q, which smolvm rejects (registry references only)", ErrInvalidOption, ref, rune(c))
		}
	}
	return nil
}
