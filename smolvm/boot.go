package smolvm

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// BootCheckOptions is one boot check: an ephemeral machine of a root
// filesystem directory that runs Command and must print Marker.
type BootCheckOptions struct {
	// Rootfs is a directory holding the command (a static binary is
	// enough); smolvm runs it as the machine's image.
	Rootfs  string
	Command []string
	// Marker must appear in the command's output: it ran in the guest.
	Marker string
}

// BootCheck boots a throwaway microVM (`machine run --image DIR -- CMD`)
// and runs a command in it: the one way to know that this host's hypervisor
// can run smolvm's guest kernel. /dev/kvm can open and still refuse to run
// it (a nested or paravirtualised KVM), which only a boot shows. The
// machine's state lives in a data dir of its own (SMOLVM_DATA_DIR), removed
// afterwards, so nothing is left in the user's smolvm, even when a failed
// boot leaves its machine directory behind (observed on 1.32.2). A failure
// is a *CommandError matching ErrBootFailed, ErrKVMPermission or
// ErrKVMUnavailable when smolvm said which.
func (c *CLI) BootCheck(ctx context.Context, o BootCheckOptions) error {
	const op = "booting a test microVM"
	if o.Rootfs == "" || len(o.Command) == 0 {
		return fmt.Errorf("%s: %w: no root filesystem or command", op, ErrInvalidOption)
	}
	data, err := os.MkdirTemp("", "bottle-bootcheck-")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer os.RemoveAll(data)
	args := append([]string{"machine", "run", "--image", o.Rootfs, "--cpus", "1", "--mem", "256", "--"}, o.Command...)
	res, err := c.run(ctx, invocation{op: op, args: args, env: []string{"SMOLVM_DATA_DIR=" + data}})
	if err != nil {
		return err
	}
	if out := string(res.stdout) + string(res.stderr); o.Marker != "" && !strings.Contains(out, o.Marker) {
		return fmt.Errorf("%s: %w: the guest command ran but did not print %q: %s", op, ErrBootFailed, o.Marker, lastLines(out, 3))
	}
	return nil
}
