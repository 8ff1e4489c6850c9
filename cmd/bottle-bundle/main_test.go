package main

import (
	"slices"
	"testing"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// TestDispatch: every subcommand that something runs is in the one map, and
// nothing else is: the bundle's image runs serve, a daemon alone runs as
// itself, and the plugin runs the helper's subcommands of the guest
// contract in every bottle.
func TestDispatch(t *testing.T) {
	want := []string{"proxy", "gate", "supervisor", "serve", "secrets",
		guest.SubcommandInit, guest.SubcommandExec, guest.SubcommandHook, guest.SubcommandSession,
		guest.SubcommandSleep, guest.SubcommandReady, guest.SubcommandDial}
	for _, name := range want {
		if daemons[name] == nil {
			t.Errorf("bottle-bundle %s is not dispatched", name)
		}
	}
	slices.Sort(want)
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("subcommands %q, want %q", got, want)
	}
}
