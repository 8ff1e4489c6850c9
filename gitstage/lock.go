package gitstage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// lockWait bounds how long a command waits for another docker bottle's
// write to the same repository, or for the user's own git, to finish (a
// variable for tests).
var lockWait = time.Minute

// lockRepo serialises this package's writes to userRepo's config across
// goroutines and processes: git refuses a second writer of .git/config
// ("could not lock config file") instead of waiting for it. The lock is an
// flock on the repository's git dir itself, so nothing is left in it and
// a holder that dies gives the lock back. unlock releases it.
func lockRepo(ctx context.Context, o options, userRepo string) (unlock func(), err error) {
	dir, err := commonDir(ctx, o, userRepo)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(dir) //nolint:gosec // G703: the repository's own git dir, as git names it
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	// Closing the dir (opened only to lock it) releases the lock and
	// loses nothing.
	release := func() { _ = f.Close() }
	deadline := time.Now().Add(lockWait)
	for wait := time.Millisecond; ; wait = min(wait*2, 50*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			release()
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			release()
			return nil, fmt.Errorf("another docker bottle has been changing the remotes of %s for %s: wait for it to end, then retry", userRepo, lockWait)
		}
		select {
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("waiting for another docker bottle changing the remotes of %s: %w", userRepo, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// gitLocked reports an error of git's own lock files (config.lock,
// packed-refs.lock, a ref's .lock): another git, the user's, is writing
// the same file right now.
func gitLocked(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "could not lock config file") || strings.Contains(msg, ".lock': File exists")
}

// write runs a git command that changes userRepo, under lockRepo's lock
// (which the caller holds); while the user's own git holds one of git's
// lock files, it tries again, for at most lockWait.
func write(ctx context.Context, o options, dir string, args ...string) error {
	deadline := time.Now().Add(lockWait)
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		_, err := run(ctx, o, dir, args...)
		if !gitLocked(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (held for %s: if no git runs in %s, remove the lock file git names, which a git that crashed left)", err, lockWait, dir)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}
