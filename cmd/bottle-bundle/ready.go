package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// runReady prints that the helper runs, with the kernel and user it runs
// under: proof that a machine booted and ran a command.
func runReady(_ context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: bottle-bundle ready")
	}
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	release := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	fmt.Printf("%s: kernel %s, uid %d\n", guest.ReadyMarker, strings.TrimSpace(string(release)), os.Getuid())
	return nil
}
