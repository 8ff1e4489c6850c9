package smolvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvBinary names the variable that points docker bottle at a smolvm
// binary, overriding PATH.
const EnvBinary = "DOCKER_BOTTLE_SMOLVM"

// Lookup finds the smolvm binary: $DOCKER_BOTTLE_SMOLVM when set (it must
// be an executable file), else `smolvm` on PATH.
func Lookup() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		fi, err := os.Stat(p) //nolint:gosec // G703: the user's own setting, only examined
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v (point it at the smolvm binary, or unset it to search PATH)", ErrNotFound, EnvBinary, p, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%w: %s=%s is not an executable file (point it at the smolvm binary, or unset it to search PATH)", ErrNotFound, EnvBinary, p)
		}
		return p, nil
	}
	p, err := exec.LookPath("smolvm")
	if err != nil {
		return "", fmt.Errorf("%w on PATH: install smolvm %s or later (https://smolmachines.com), "+
			"set %s to its path, or use --backend docker", ErrNotFound, RecommendedVersion, EnvBinary)
	}
	return p, nil
}

// CLI drives one smolvm binary. It is safe for concurrent use.
type CLI struct {
	path     string
	env      []string
	progress io.Writer
	grace    time.Duration

	mu      sync.Mutex
	version *Version // set by Version, for the gates in MachineCreate
}

// Option configures a CLI.
type Option func(*CLI)

// WithEnv adds KEY=VALUE entries to the environment of every smolvm run
// (on top of this process's environment).
func WithEnv(kv ...string) Option { return func(c *CLI) { c.env = append(c.env, kv...) } }

// WithProgress copies smolvm's stderr (progress lines such as
// `Pulling image X... done.`) to w as it arrives.
func WithProgress(w io.Writer) Option { return func(c *CLI) { c.progress = w } }

// WithGracePeriod sets how long a cancelled smolvm gets between SIGINT and
// SIGKILL (default 10s).
func WithGracePeriod(d time.Duration) Option { return func(c *CLI) { c.grace = d } }

// New returns a CLI for the smolvm binary at path (see Lookup).
func New(path string, opts ...Option) *CLI {
	c := &CLI{path: path, grace: 10 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Path returns the binary this CLI runs.
func (c *CLI) Path() string { return c.path }

// invocation is one smolvm run.
type invocation struct {
	op      string   // what the plugin is doing, for errors
	machine string   // machine name, for remedies
	args    []string // smolvm arguments
	env     []string // extra environment for this run
	stdin   io.Reader
	stdout  io.Writer // nil: captured and returned
	stderr  io.Writer // nil: progress writer (stderr is always captured too)
}

type result struct {
	stdout []byte
	stderr []byte
	code   int
}

func (c *CLI) command(ctx context.Context, inv invocation) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path, inv.args...)
	cmd.Env = append(append(scrubEnv(os.Environ()), c.env...), inv.env...)
	// smolvm handles SIGINT (it tears down the VM it is starting) and has
	// no SIGTERM handler, so a cancelled run gets SIGINT first, then
	// SIGKILL after the grace period.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = c.grace
	return cmd
}

// passedSmolvmVars are the SMOLVM_* variables of the user's environment
// that reach smolvm: where its files are, how it logs, and its time and
// size bounds. smolvm reads many more, some of which change a machine's
// network or lift its egress floor (SMOLVM_PUBLISH_ADDR,
// SMOLVM_GUEST_HOST_SERVICE, SMOLVM_EGRESS_FLOOR, SMOLVM_EGRESS_ALLOW_PRIVATE,
// SMOLVM_ALLOW_HOST_LOOPBACK, SMOLVM_NETWORK_*, SMOLVM_PORT_FORWARD, ...)
// or its isolation (SMOLVM_VM_UID_DROP, SMOLVM_SECCOMP, SMOLVM_LANDLOCK), and
// a future release may add others: a bottle's confinement must not depend
// on what happens to be exported, so every other SMOLVM_* is dropped.
// SMOLVM_FAKE_* steer the contract fake used in tests; no smolvm reads
// them.
var passedSmolvmVars = map[string]bool{
	"SMOLVM_CONFIG": true, "SMOLVM_DATA_DIR": true, "SMOLVM_LIB_DIR": true,
	"SMOLVM_AGENT_ROOTFS": true, "SMOLVM_AGENT_ROOTFS_TAR": true,
	"SMOLVM_LOG_FORMAT": true, "SMOLVM_KRUN_LOG_LEVEL": true,
	"SMOLVM_PACK_STAGING": true, "SMOLVM_MAX_IMAGE_BYTES": true, "SMOLVM_PACK_MAX_ENTRIES": true,
	"SMOLVM_START_TIMEOUT_SECS": true, "SMOLVM_AGENT_READY_TIMEOUT_SECS": true, "SMOLVM_FLATTEN_TIMEOUT_SECS": true,
	"SMOLVM_BLOB_CACHE_MAX_BYTES": true, "SMOLVM_PACK_CACHE_MAX_BYTES": true,
}

// scrubEnv drops the SMOLVM_* variables smolvm must not see (see
// passedSmolvmVars).
func scrubEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SMOLVM_") && !passedSmolvmVars[name] && !strings.HasPrefix(name, "SMOLVM_FAKE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// run executes smolvm and returns its output. A non-zero exit becomes a
// *CommandError; a cancelled context becomes ctx.Err() wrapped with op.
func (c *CLI) run(ctx context.Context, inv invocation) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, fmt.Errorf("%s: %w", inv.op, err)
	}
	cmd := c.command(ctx, inv)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = inv.stdin
	if inv.stdout != nil {
		cmd.Stdout = inv.stdout
	} else {
		cmd.Stdout = &stdout
	}
	errw := inv.stderr
	if errw == nil {
		errw = c.progress
	}
	if errw != nil {
		cmd.Stderr = io.MultiWriter(&stderr, errw)
	} else {
		cmd.Stderr = &stderr
	}
	err := cmd.Run()
	res := result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w", inv.op, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		res.code = ee.ExitCode()
		return res, newCommandError(inv.op, inv.args, res.code, res.stderr, inv.machine)
	}
	return res, fmt.Errorf("%s: running %s: %w", inv.op, c.path, err)
}
