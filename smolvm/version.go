package smolvm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version gates (CONTRACT.md, section 0).
var (
	// MinVersion: before 1.8.0 `machine create --from` silently dropped
	// --allow-host/--allow-cidr, so a bottle would have no egress
	// restriction at all; before 1.8.1 a pack made by a non-root user lost
	// its files' owners (every file one owner: the agent's home breaks) and
	// `exec -i` deadlocked on large input.
	MinVersion = Version{Major: 1, Minor: 8, Patch: 1}
	// RecommendedVersion: before 1.14.2 smolvm has no --user, and a
	// `--from` machine runs its workload and every exec as root, not as
	// the image's user (the plugin passes --user where it can); before
	// 1.13.0 a first boot that unpacks a large image times out after 120 s.
	RecommendedVersion = Version{Major: 1, Minor: 14, Patch: 2}
	// CheckedVersion is the newest smolvm whose command line this package
	// was checked against (the transcripts of CONTRACT.md). A newer one is
	// used, with a warning: its flags, output or behaviour may have moved.
	CheckedVersion = Version{Major: 1, Minor: 32, Patch: 2}
	// UserFlagVersion added `--user` to machine create and exec.
	UserFlagVersion = Version{Major: 1, Minor: 14, Patch: 2}
)

// Version is a smolvm release number.
type Version struct {
	Major, Minor, Patch int
	Raw                 string // the line `smolvm --version` printed
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is an older release than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// Check applies the version gates: an error (ErrTooOld) below MinVersion, a
// warning below RecommendedVersion or above CheckedVersion, each with its
// reason.
func (v Version) Check() (warning string, err error) {
	switch {
	case v.Less(Version{Major: 1, Minor: 8}):
		return "", fmt.Errorf("%w: smolvm %s is older than %s: before 1.8.0 `machine create --from` drops the "+
			"--allow-host/--allow-cidr allowlist, so the bottle would have no egress restriction at all; "+
			"upgrade smolvm to %s or later, or use --backend docker", ErrTooOld, v, MinVersion, RecommendedVersion)
	case v.Less(MinVersion):
		return "", fmt.Errorf("%w: smolvm %s is older than %s: before it a pack made by a non-root user loses its files' "+
			"owners (the agent's home and workspace break) and `exec -i` can hang on large input; "+
			"upgrade smolvm to %s or later, or use --backend docker", ErrTooOld, v, MinVersion, RecommendedVersion)
	case v.Less(RecommendedVersion):
		return fmt.Sprintf("smolvm %s is older than the recommended %s: the agent runs as root in the machine, not as "+
			"its image's user, and a first boot of a large image can time out; upgrade smolvm", v, RecommendedVersion), nil
	case CheckedVersion.Less(v):
		return fmt.Sprintf("smolvm %s is newer than %s, the newest release docker bottle was checked against: "+
			"if a bottle fails, try --backend docker and report the smolvm version", v, CheckedVersion), nil
	}
	return "", nil
}

// smol-machines' smolvm is a clap program: `--version` prints exactly
// `smolvm X.Y.Z`.
var versionRE = regexp.MustCompile(`^smolvm (\d+)\.(\d+)\.(\d+)$`)

// ParseVersion reads the output of `smolvm --version`.
func ParseVersion(out string) (Version, error) {
	line := strings.TrimSpace(firstLine(out))
	m := versionRE.FindStringSubmatch(line)
	if m == nil {
		return Version{}, fmt.Errorf("%w: `smolvm --version` printed %q, expected `smolvm X.Y.Z`", ErrBadVersion, line)
	}
	var n [3]int
	for i := range n {
		v, err := strconv.Atoi(m[i+1])
		if err != nil {
			return Version{}, fmt.Errorf("%w: %q: %v", ErrBadVersion, line, err)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], Raw: line}, nil
}

// Version runs `smolvm --version` and makes sure the binary is
// smol-machines' smolvm.
//
// CelestoAI's Python SmolVM (PyPI "smolvm") also installs a `smolvm`
// command. Its click-based CLI prints `smolvm <PEP 440 version>` for
// --version (e.g. `smolvm 0.0.10`, same shape as ours), and its older
// argparse CLI has no --version at all (exit 2, `usage: smolvm [-h] ...`).
// So the version line alone cannot tell them apart: Version also reads
// `smolvm --help` and requires smol-machines' `machine` and `pack`
// commands, and recognises Celesto's markers (its `sandbox` command, its
// help texts, argparse's `usage: smolvm [-h]`, PEP 440 suffixes).
func (c *CLI) Version(ctx context.Context) (Version, error) {
	const op = "checking the smolvm version"
	res, err := c.run(ctx, invocation{op: op, args: []string{"--version"}})
	out := string(res.stdout) + string(res.stderr)
	if err != nil {
		if looksCelesto(out) {
			return Version{}, c.celestoError(out)
		}
		return Version{}, err
	}
	v, perr := ParseVersion(string(res.stdout))
	if perr != nil {
		if looksCelesto(out) {
			return Version{}, c.celestoError(out)
		}
		return Version{}, fmt.Errorf("%s: %s: %w", op, c.path, perr)
	}
	help, herr := c.run(ctx, invocation{op: op, args: []string{"--help"}})
	helpText := string(help.stdout) + string(help.stderr)
	if looksCelesto(helpText) {
		return Version{}, c.celestoError(helpText)
	}
	if herr != nil {
		return Version{}, herr
	}
	if !hasCommand(helpText, "machine") || !hasCommand(helpText, "pack") {
		return Version{}, fmt.Errorf("%s: %w: %s prints %q but its --help lists no `machine` and `pack` commands; "+
			"install smol-machines' smolvm or set %s", op, ErrBadVersion, c.path, v.Raw, EnvBinary)
	}
	c.mu.Lock()
	c.version = &v
	c.mu.Unlock()
	return v, nil
}

func (c *CLI) celestoError(out string) error {
	return fmt.Errorf("%w: %s (it printed %q); uninstall it or put smol-machines' smolvm first on PATH, or set %s to the right binary",
		ErrCelestoSmolVM, c.path, lastLines(out, 2), EnvBinary)
}

var pep440Suffix = regexp.MustCompile(`^smolvm \d+(\.\d+)*[._-]?(a|b|rc|alpha|beta|dev|post)\d*`)

// looksCelesto recognises CelestoAI's SmolVM from --version or --help
// output (click and argparse variants, src/smolvm/cli/commands/app.py and
// src/smolvm/cli.py in CelestoAI/SmolVM).
func looksCelesto(out string) bool {
	if pep440Suffix.MatchString(strings.TrimSpace(firstLine(out))) {
		return true
	}
	for _, marker := range []string{
		"usage: smolvm [-h]",                 // argparse (lower-case usage; clap prints "Usage:")
		"SmolVM command-line tools",          // argparse description
		"disposable sandboxes for AI agents", // click root help
		"Celesto",
	} {
		if strings.Contains(out, marker) {
			return true
		}
	}
	return hasCommand(out, "sandbox") && !hasCommand(out, "machine")
}

// hasCommand reports whether help text lists a subcommand: a line that
// starts (after indentation) with the command name followed by spaces.
func hasCommand(help, name string) bool {
	for _, l := range strings.Split(help, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && strings.HasPrefix(l, "  ") && strings.TrimSuffix(f[0], ",") == name {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// HasUserFlag reports whether this smolvm takes --user on machine create
// and exec (asking its version if it was not asked yet).
func (c *CLI) HasUserFlag(ctx context.Context) bool {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v == nil {
		got, err := c.Version(ctx)
		if err != nil {
			return false
		}
		v = &got
	}
	return !v.Less(UserFlagVersion)
}

// checkUserFlag refuses --user on a smolvm known to lack it.
func (c *CLI) checkUserFlag(user string) error {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if user != "" && v != nil && v.Less(UserFlagVersion) {
		return fmt.Errorf("%w: smolvm %s has no --user (it came in %s); upgrade smolvm", ErrInvalidOption, v, UserFlagVersion)
	}
	return nil
}
