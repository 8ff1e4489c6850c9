// Package session is the helper's session subcommand (Main): the agent's
// session in a bottle, for a backend that has no attach or logs of its own
// (smolvm). `session start` runs the agent under a terminal of its own and
// keeps its output in a log; `attach`, `logs`, `status` and `wait`, run by
// other execs, reach it through a unix socket and the files of the session
// directory.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/provider/guest/pty"
)

const sessionUsage = `usage: bottle-bundle session COMMAND [OPTIONS]

The agent's session in a bottle: the agent runs under a terminal of its own,
its output is kept in a log, and terminals attach to it and detach again.

Commands:
  start [--dir DIR] [--id ID] [-- COMMAND [ARG...]]
        run COMMAND as the session, in the foreground, until it exits;
        without COMMAND, the last session's command again
  attach [--dir DIR] [--id ID] [--wait DURATION]
        attach this terminal to the agent; detach with Ctrl-P Ctrl-Q (the
        agent keeps running); the exit code is the agent's
  logs [--dir DIR] [-f] [--tail N|all]
        print the agent's output, following it while the session runs
  status [--dir DIR]
        print the session's state as JSON
  wait [--dir DIR] --id ID [--timeout DURATION]
        wait until the session ID has started

DIR defaults to $HOME/` + guest.SessionDirName + `.
`

// Main is the helper's `session` subcommand (see sessionUsage).
func Main(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, sessionUsage)
		if len(args) == 0 {
			return errors.New("no session command")
		}
		return nil
	}
	fs := flag.NewFlagSet("session "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, sessionUsage) }
	dir := fs.String("dir", guest.SessionDir(os.Getenv, os.Getuid()), "session directory")
	switch args[0] {
	case "start":
		id := fs.String("id", "", "session id (default: random)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *id == "" {
			*id = newSessionID()
		}
		// The session outlives the exec that started it and the terminal
		// (if any) it came from.
		_, _ = syscall.Setsid()
		signal.Ignore(syscall.SIGHUP)
		code, err := startSession(ctx, *dir, *id, fs.Args())
		if err != nil {
			// Started with exec -d, nobody reads stderr: the log is where
			// `docker bottle logs` shows why.
			logSessionError(*dir, err)
			return err
		}
		if code != 0 {
			return guest.ExitCode(code)
		}
		return nil
	case "attach":
		id := fs.String("id", "", "attach to this session, waiting for it to start (default: the running one)")
		wait := fs.Duration("wait", 30*time.Second, "how long to wait for --id to start")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return errors.New("usage: bottle-bundle session attach [--dir DIR] [--id ID] [--wait DURATION]")
		}
		o := attachOptions{Dir: *dir, ID: *id, In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
		if *id != "" {
			o.Wait = *wait
		}
		if pty.IsTerminal(os.Stdin) {
			o.Term = os.Stdin
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, syscall.SIGWINCH)
			o.Resize = winch
		}
		res, err := attach(ctx, o)
		if err != nil {
			return err
		}
		if res.Detached {
			fmt.Fprint(os.Stderr, "\r\ndocker bottle: detached; the agent keeps running\r\n")
			return nil
		}
		if res.Code != 0 {
			return guest.ExitCode(res.Code)
		}
		return nil
	case "logs":
		var follow bool
		fs.BoolVar(&follow, "f", false, "follow the output while the session runs")
		fs.BoolVar(&follow, "follow", false, "follow the output while the session runs")
		tail := fs.String("tail", "all", "number of lines from the end, or all")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		n := -1
		if *tail != "all" {
			v, err := strconv.Atoi(*tail)
			if err != nil || v < 0 {
				return fmt.Errorf("--tail %q: give a number of lines or all", *tail)
			}
			n = v
		}
		return sessionLogs(ctx, logsOptions{Dir: *dir, Follow: follow, Tail: n, Out: os.Stdout})
	case "status":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		st, err := sessionStatus(*dir)
		if err != nil {
			return err
		}
		return writeJSON(os.Stdout, st)
	case "wait":
		id := fs.String("id", "", "session id")
		timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *id == "" {
			return errors.New("usage: bottle-bundle session wait [--dir DIR] --id ID [--timeout DURATION]")
		}
		return waitSession(ctx, *dir, *id, *timeout)
	}
	fmt.Fprint(os.Stderr, sessionUsage)
	return fmt.Errorf("unknown session command %q", args[0])
}

// startSession runs argv, or without argv the last session's command, as
// the session (as a container re-runs its command when started again).
func startSession(ctx context.Context, dir, id string, argv []string) (int, error) {
	f := sessionFiles{dir: dir}
	if len(argv) == 0 {
		b, err := os.ReadFile(f.command())
		if err == nil {
			err = json.Unmarshal(b, &argv)
		}
		if err != nil || len(argv) == 0 {
			return 0, fmt.Errorf("no command given and no earlier session's command in %s: usage: bottle-bundle session start [--dir DIR] [--id ID] -- COMMAND [ARG...]", dir)
		}
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return 0, fmt.Errorf("making the session directory: %w", err)
		}
		b, _ := json.Marshal(argv)
		if err := os.WriteFile(f.command(), b, 0o600); err != nil {
			return 0, fmt.Errorf("recording the session's command: %w", err)
		}
	}
	return runSessionServer(ctx, serverOptions{Dir: dir, ID: id, Argv: argv})
}

func logSessionError(dir string, err error) {
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	lf, ferr := os.OpenFile(sessionFiles{dir: dir}.log(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if ferr != nil {
		return
	}
	defer lf.Close() //nolint:errcheck // one unbuffered append, written when Fprintf returns
	fmt.Fprintf(lf, "docker bottle: the agent's session did not start: %v\r\n", err)
}

func newSessionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
