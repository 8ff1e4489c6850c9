// Package machine is what the helper does for a smolvm machine itself
// rather than for the agent: keep it up (Sleep) and show that it booted
// (Ready).
package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// Sleep waits until it is stopped: the workload that keeps a smolvm
// machine up while the agent runs through `machine exec`, without needing a
// sleep binary in the agent's image.
func Sleep(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: bottle-bundle sleep")
	}
	<-ctx.Done()
	return nil
}

// Ready prints that the helper runs, with the kernel and user it runs
// under: proof that a machine booted and ran a command.
func Ready(_ context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: bottle-bundle ready")
	}
	return ready(os.Stdout)
}

func ready(w io.Writer) error {
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := strings.TrimSpace(unix.ByteSliceToString(u.Release[:]))
	_, err := fmt.Fprintf(w, "%s: kernel %s, uid %d\n", guest.ReadyMarker, release, os.Getuid())
	return err
}
