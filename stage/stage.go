// Package stage keeps a bottle's stage dir: the host dir that holds its
// plan, its tokens, the prompt, the gate's repository and what the bundle
// and the bottle read (DESIGN.md's "stage dir"). It lays the dir out,
// claims a bottle's name by making it, writes its files and saves and
// loads the plan, the record of the bottle. Package plan computes the
// values; this package is where they touch the disk.
package stage

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/docker-bottle/docker-bottle/plan"
)

// Files in a stage dir, relative to it (slash-separated, as the bundle
// sees them under its mount too). What the bottle may see is in GuestDir,
// which is mounted read-only at plan.GuestDir. OperatorToken is where a
// bottle made before the operator token left the stage dir keeps it.
const (
	PlanFile   = "plan.json"
	GuestDir   = "guest"
	PromptFile = GuestDir + "/prompt"
	// The agent token twice: 0600 for the bundle's daemons, and readable
	// in the guest dir for the bottle.
	AgentToken    = "agent.token"
	GuestToken    = GuestDir + "/token"
	GuestCA       = GuestDir + "/ca.pem"
	UserConfig    = GuestDir + "/user-config.tar"
	OperatorToken = "operator.token"
	GateRepo      = "gate.git"
)

// Volume is the name of the bottle's volume for role on the engine
// (plan.RoleStage, plan.RoleGuest), where its stage lives when
// plan.BundlePlan.StageOnEngine.
func Volume(slug, role string) string { return "bottle-" + slug + "-" + role }

// Dir is one bottle's stage dir.
type Dir struct{ path string }

// At is the stage dir at path.
func At(path string) Dir { return Dir{path: path} }

// Of is the stage dir a plan records.
func Of(p plan.Plan) Dir { return At(p.StageDir) }

// Path is where the dir is on the host.
func (d Dir) Path() string { return d.path }

// File is the host path of name, one of the files of the layout above (or
// another file the bundle keeps there).
func (d Dir) File(name string) string { return filepath.Join(d.path, filepath.FromSlash(name)) }

// Files are the paths of the dir that a plan records.
func (d Dir) Files() plan.Files {
	return plan.Files{Dir: d.path, Prompt: d.File(PromptFile), AgentToken: d.File(AgentToken),
		OperatorToken: d.operatorToken(), GateRepo: d.File(GateRepo)}
}

// operatorToken is where the plugin keeps the bottle's operator token:
// next to the stage dir, not in it, since the stage dir is mounted into
// the bundle. The plugin is a new process at each command and must read
// it again to talk to the supervisor; the bundle gets it in memory
// (bringup.SendSecrets), a new one at each start (WriteOperatorToken).
// The leading dot keeps it apart from the stage dirs: no bottle's name
// starts with one.
func (d Dir) operatorToken() string {
	return filepath.Join(filepath.Dir(d.path), "."+filepath.Base(d.path)+".operator-token")
}

// WriteOperatorToken mints a new operator token for p's bundle, writes it
// (0600) where p's plan says, in place of the one before, and returns it.
func WriteOperatorToken(p plan.Plan) (string, error) {
	tok := newToken()
	tmp := p.OperatorTokenFile + ".tmp"
	if err := writeFile(tmp, []byte(tok), 0o600); err != nil {
		return "", fmt.Errorf("writing the operator token of %s: %w", p.Slug, err)
	}
	// Renamed into place: a command reading it never sees half a token.
	if err := os.Rename(tmp, p.OperatorTokenFile); err != nil {
		return "", fmt.Errorf("writing the operator token of %s: %w", p.Slug, err)
	}
	return tok, nil
}

// RemoveOperatorToken removes p's operator token from the host.
func RemoveOperatorToken(p plan.Plan) error {
	if p.OperatorTokenFile == "" {
		return nil
	}
	if err := os.Remove(p.OperatorTokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the operator token of %s: %w", p.Slug, err)
	}
	return nil
}

// Exists reports whether anything is at the dir's path (a bottle's name
// is taken while it does).
func (d Dir) Exists() bool {
	_, err := os.Lstat(d.path)
	return !errors.Is(err, fs.ErrNotExist)
}

// Claim makes the dir (0700) and fails when it exists: the atomic claim
// of the bottle's name. The bottles dir around it must exist.
func (d Dir) Claim() error { return os.Mkdir(d.path, 0o700) }

// Remove removes the dir and all in it.
func (d Dir) Remove() error { return os.RemoveAll(d.path) }

// Save writes p into the dir (0600), where ls, rm and the lifecycle
// commands read it. The plan is the bottle's record: every change to it
// that must outlive the command goes through here.
func (d Dir) Save(p plan.Plan) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the plan: %w", err)
	}
	return writeFile(d.File(PlanFile), append(data, '\n'), 0o600)
}

// Save writes p into its own stage dir.
func Save(p plan.Plan) error { return Of(p).Save(p) }

// Load reads the plan the dir holds.
func (d Dir) Load() (plan.Plan, error) {
	data, err := os.ReadFile(d.File(PlanFile))
	if err != nil {
		return plan.Plan{}, fmt.Errorf("reading the bottle's plan: %w", err)
	}
	var p plan.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return plan.Plan{}, fmt.Errorf("decoding %s: %w", d.File(PlanFile), err)
	}
	return p, nil
}

// WriteGuestFile writes name (relative to GuestDir) for the bottle to read:
// the agent runs as whatever user its image has, so the file is readable
// by all; the stage dir around it (0700) keeps other host users out.
func (d Dir) WriteGuestFile(name string, data []byte) error {
	return writeFile(d.File(GuestDir+"/"+name), data, 0o644)
}

// fill writes what Prepare puts in a new stage dir: the guest dir with
// the prompt, the user's agent settings (when given) and the agent token,
// and the bundle's copy of the agent token. The guest dir is what the
// bottle sees, mounted read-only. The operator token is minted when the
// bundle starts (WriteOperatorToken).
func (d Dir) fill(prompt, userConfig []byte) error {
	if err := os.Mkdir(d.File(GuestDir), 0o755); err != nil {
		return fmt.Errorf("making the guest dir: %w", err)
	}
	if err := writeFile(d.File(PromptFile), prompt, 0o644); err != nil {
		return fmt.Errorf("writing the prompt file: %w", err)
	}
	if userConfig != nil {
		if err := writeFile(d.File(UserConfig), userConfig, 0o644); err != nil {
			return fmt.Errorf("writing your agent settings for the bottle: %w", err)
		}
	}
	agentToken := []byte(newToken())
	if err := writeFile(d.File(AgentToken), agentToken, 0o600); err != nil {
		return fmt.Errorf("writing the agent token: %w", err)
	}
	if err := writeFile(d.File(GuestToken), agentToken, 0o644); err != nil {
		return fmt.Errorf("writing the agent token: %w", err)
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// newToken is a bottle's secret: 128 random bits in base32.
func newToken() string { return rand.Text() }
