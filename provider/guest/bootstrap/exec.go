package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// Exit codes of an exec whose command cannot run, as a shell's.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// Exec is what `docker bottle exec` runs in the bottle, as the agent's
// user:
//
//	bottle-bundle exec -- COMMAND [ARGS...]
//
// It gives COMMAND the network the agent has: the bottle's token goes into
// the proxy URLs of its environment, read from the token file as the
// bootstrap does for the agent, so the token is in no recorded environment
// and on no command line. The rest of the environment and the working
// directory are the exec's own (its -e and -w). COMMAND replaces the
// helper, keeping its terminal and signals.
func Exec(_ context.Context, args []string) error {
	path, argv, env, code, err := execTarget(args, os.Environ(), os.Stderr)
	if err == nil {
		err = syscall.Exec(path, argv, env)
		code = exitCannotRun
	}
	fmt.Fprintf(os.Stderr, "docker bottle exec: %v\n", err)
	return guest.ExitCode(code)
}

// execTarget is what Exec executes: the command's path, its arguments
// and its environment; or the exit code and the reason it cannot run. A
// token that cannot be read is said on stderr and the command runs without
// it (the user is debugging, perhaps that very bottle).
func execTarget(args, environ []string, stderr io.Writer) (path string, argv, env []string, code int, err error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "" {
		return "", nil, nil, 2, errors.New("usage: bottle-bundle exec -- COMMAND [ARGS...]")
	}
	e := newEnv(environ)
	if token, err := readToken(e); err != nil {
		fmt.Fprintf(stderr, "docker bottle exec: %v; the command runs without the proxy's token, so the proxy will refuse it (407)\n", err)
	} else {
		e = withProxyToken(e, token)
	}
	path, err = lookPath(args[0], e.get("PATH"))
	if err != nil {
		return "", nil, nil, exitNotFound, err
	}
	return path, args, e.list(), 0, nil
}
