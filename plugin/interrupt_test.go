package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	mobyclient "github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// TestInterruptAdapter: a real SIGINT or SIGTERM cancels the command's
// context, and the command ends with ErrInterrupted (exit 130), whether it
// returned an error or ended cleanly (a follow); so does a command whose
// context the docker CLI cancels (its way of passing a Ctrl-C on to a
// plugin); an error without an interrupt is left alone.
func TestInterruptAdapter(t *testing.T) {
	errOwn := errors.New("the command's own error")
	for _, c := range []struct {
		name   string
		signal syscall.Signal // 0: none; -1: the caller cancels the context
		ret    func(ctx context.Context) error
		want   func(error) bool
	}{
		{"SIGINT, cancelled", syscall.SIGINT, func(ctx context.Context) error { return ctx.Err() },
			func(err error) bool { return errors.Is(err, ErrInterrupted) }},
		{"SIGTERM, an error that wraps the cancellation", syscall.SIGTERM,
			func(ctx context.Context) error { return fmt.Errorf("waiting for the bundle: %w", ctx.Err()) },
			func(err error) bool { return errors.Is(err, ErrInterrupted) }},
		{"SIGINT, a clean end", syscall.SIGINT, func(context.Context) error { return nil },
			func(err error) bool { return errors.Is(err, ErrInterrupted) }},
		{"the docker CLI cancels", -1, func(ctx context.Context) error { return nil },
			func(err error) bool { return errors.Is(err, ErrInterrupted) }},
		{"no signal", 0, func(context.Context) error { return errOwn },
			func(err error) bool { return err == errOwn }},
		{"SIGINT, an agent's exit status", syscall.SIGINT, func(context.Context) error { return cli.StatusError{StatusCode: 2} },
			func(err error) bool {
				var st cli.StatusError
				return errors.Is(err, ErrInterrupted) && errors.As(err, &st) && st.StatusCode == 2
			}},
		{"already ErrInterrupted", syscall.SIGINT, func(ctx context.Context) error { return fmt.Errorf("%w: bring-up", ErrInterrupted) },
			func(err error) bool { return err.Error() == "interrupted: bring-up" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true, RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				if c.signal != 0 {
					if c.signal < 0 {
						cancel()
					} else if err := syscall.Kill(os.Getpid(), c.signal); err != nil {
						t.Fatal(err)
					}
					select {
					case <-ctx.Done():
					case <-time.After(30 * time.Second):
						return errors.New("the signal did not cancel the context")
					}
				}
				return c.ret(ctx)
			}}
			adaptInterrupt(cmd)
			cmd.SetArgs(nil)
			if err := cmd.ExecuteContext(parent); !c.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestEveryCommandIsInterruptible interrupts commands of the real tree,
// also those that had no signal handling of their own, while they wait
// for an engine that never answers: each ends with ErrInterrupted.
func TestEveryCommandIsInterruptible(t *testing.T) {
	b := newBottle(t, "intr")
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var asked atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			asked.Add(1)
			defer c.Close() // held open, never answered
		}
	}()
	eng, err := mobyclient.New(mobyclient.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls"}, {"events", b.name}, {"stop", b.name}, {"start", b.name}, {"rm", "-f", b.name}} {
		t.Run(args[0], func(t *testing.T) {
			cli, err := command.NewDockerCli(command.WithOutputStream(&testio.Buffer{}), command.WithErrorStream(&testio.Buffer{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.Initialize(flags.NewClientOptions(), command.WithAPIClient(eng)); err != nil {
				t.Fatal(err)
			}
			root := NewRootCmd(cli)
			root.SetArgs(args)
			before := asked.Load()
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(context.Background()) }()
			for deadline := time.Now().Add(30 * time.Second); asked.Load() == before; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the command never asked the engine")
				}
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, ErrInterrupted) {
					t.Fatalf("%q interrupted: %v, want ErrInterrupted (exit 130)", args, err)
				} else {
					t.Logf("%q: %v", args, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%q: the interrupt did not end the command", args)
			}
		})
	}
}
