package gate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/conf"
	"github.com/docker-bottle/docker-bottle/bundle/defaults"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
	"github.com/docker-bottle/docker-bottle/bundle/protect"
)

// Config is the gate's configuration. The plugin writes it as JSON into the
// stage dir; the bundle reads it with LoadConfig. It holds no secret: the
// token lives in its own 0600 file.
type Config struct {
	// Listen is the TCP address to serve on, e.g. "0.0.0.0:8418".
	Listen string `json:"listen"`
	// Bottle is the bottle's name (slug); the default push rule uses it.
	Bottle string `json:"bottle"`
	// Repo is the path of the bare repository to serve.
	Repo string `json:"repo"`
	// TokenFile holds the bottle's token (mode 0600). Git sends it as the
	// password of HTTP Basic authentication.
	TokenFile string `json:"token_file"`
	// Push says which ref updates a push may make.
	Push PushRules `json:"push"`
	// ProtectedPaths are globs of paths (relative to the repository root)
	// that a push must not touch without a human's approval. Nil means
	// protect.Defaults(), the list the spec fills in too; an empty list
	// protects nothing.
	ProtectedPaths []string `json:"protected_paths"`
	// Start is where the bottle started. A push is checked for the
	// protected paths its new tips change relative to it, besides those
	// its new commits change.
	Start Start `json:"start,omitzero"`
	// MaxPackBytes bounds the pack of one push; 0 means DefaultMaxPackBytes.
	MaxPackBytes int64 `json:"max_pack_bytes,omitempty"`
	// MaxPushedBytes is the bottle's quota for pushed data: what its
	// accepted pushes may store in all; 0 means DefaultMaxPushedBytes.
	MaxPushedBytes int64 `json:"max_pushed_bytes,omitempty"`
	// AuditFile is where the JSON-lines audit goes; empty means none.
	AuditFile string `json:"audit_file,omitempty"`
	// Approvals sends pushes that touch protected paths to a human instead
	// of refusing them.
	Approvals Approvals `json:"approvals"`
}

// Start is the user's branch when the bottle was prepared.
type Start struct {
	// Commit is the branch's commit then; empty means the commit HEAD
	// names when the gate starts.
	Commit string `json:"commit,omitempty"`
	// Ref is the branch (e.g. refs/heads/main). While the bottle cannot
	// write it, its current commit (the user's later work) counts as a
	// start too.
	Ref string `json:"ref,omitempty"`
}

// PushRules are the refs a push may update and how.
type PushRules struct {
	// Refs are the ref globs a push may update: "*" matches within one path
	// component, "**" across components. Empty means
	// refs/heads/bottle/<bottle>/*.
	Refs []string `json:"refs,omitempty"`
	// AllowForce permits non-fast-forward updates.
	AllowForce bool `json:"allow_force,omitempty"`
	// AllowDelete permits deleting refs.
	AllowDelete bool `json:"allow_delete,omitempty"`
	// AllowTags permits creating or moving tags (refs/tags/...).
	AllowTags bool `json:"allow_tags,omitempty"`
}

// Approvals configures holding pushes for a human.
type Approvals struct {
	Enabled bool `json:"enabled,omitempty"`
	// Timeout is how long a push waits for a decision before it is
	// refused; 0 means DefaultApprovalTimeout.
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration in the JSON configuration.
type Duration = conf.Duration

const (
	// DefaultMaxPackBytes bounds a push when the config gives no limit.
	DefaultMaxPackBytes = 512 << 20
	// DefaultMaxPushedBytes is a bottle's quota for pushed data when the
	// config gives none: the stage directory is on the user's own disk.
	DefaultMaxPushedBytes = 2 << 30
	// DefaultApprovalTimeout is how long a held push waits for a human.
	DefaultApprovalTimeout = defaults.ApprovalTimeout
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// LoadConfig reads a JSON config file, rejecting unknown fields, and fills
// in the defaults.
func LoadConfig(path string) (Config, error) {
	return conf.Load(path, "gate config", func(b []byte) (Config, error) {
		c, err := conf.Decode[Config](b)
		if err != nil {
			return c, err
		}
		return c.withDefaults()
	})
}

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New(`listen is required (e.g. "0.0.0.0:8418")`))
	}
	if !slugRE.MatchString(c.Bottle) {
		errs = append(errs, fmt.Errorf("bottle %q is not a valid bottle name (lowercase letters, digits, '.', '_', '-')", c.Bottle))
	}
	if c.Repo == "" {
		errs = append(errs, errors.New("repo (the bare repository to serve) is required"))
	}
	if c.TokenFile == "" {
		errs = append(errs, errors.New("token_file is required: the gate serves nobody without a token"))
	}
	if len(c.Push.Refs) == 0 {
		c.Push.Refs = []string{defaults.PushRef(c.Bottle)}
	}
	for _, p := range c.Push.Refs {
		if !strings.HasPrefix(p, "refs/") || strings.Contains(p, "//") || strings.HasSuffix(p, "/") {
			errs = append(errs, fmt.Errorf("push ref pattern %q must be a ref glob starting with refs/ (e.g. refs/heads/bottle/%s/*)", p, c.Bottle))
		} else if err := checkGlob(p); err != nil {
			errs = append(errs, fmt.Errorf("push ref pattern %q: %w", p, err))
		}
	}
	if c.ProtectedPaths == nil {
		c.ProtectedPaths = protect.Defaults()
	}
	for _, p := range c.ProtectedPaths {
		if err := protect.Check(p); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Start.Commit != "" {
		if _, err := repo.ParseHash(c.Start.Commit); err != nil {
			errs = append(errs, fmt.Errorf("start.commit %q is not a commit id", c.Start.Commit))
		}
	}
	if c.Start.Ref != "" && !validRefName(c.Start.Ref) {
		errs = append(errs, fmt.Errorf("start.ref %q is not a ref name", c.Start.Ref))
	}
	switch {
	case c.MaxPackBytes < 0:
		errs = append(errs, fmt.Errorf("max_pack_bytes must not be negative"))
	case c.MaxPackBytes == 0:
		c.MaxPackBytes = DefaultMaxPackBytes
	}
	switch {
	case c.MaxPushedBytes < 0:
		errs = append(errs, fmt.Errorf("max_pushed_bytes must not be negative"))
	case c.MaxPushedBytes == 0:
		c.MaxPushedBytes = DefaultMaxPushedBytes
	}
	if c.Approvals.Timeout < 0 {
		errs = append(errs, fmt.Errorf("approvals.timeout must not be negative"))
	} else if c.Approvals.Timeout == 0 {
		c.Approvals.Timeout = Duration(DefaultApprovalTimeout)
	}
	return c, errors.Join(errs...)
}
