package pack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/pelletier/go-toml/v2"
)

// Credential is a registry login smolvm must use for a pull.
type Credential struct {
	// Registry is the registry part of the image reference (host[:port];
	// Docker Hub is "docker.io").
	Registry string
	Username string
	Password string
}

// Config is a temporary SMOLVM_CONFIG file.
type Config struct {
	// Path is the file (mode 0600, in a private 0700 directory).
	Path string
	// Env is what smolvm's process needs: SMOLVM_CONFIG=Path and one
	// variable per password. Pass it only to that process.
	Env []string
	dir string
}

// registryKey is what a [images.registries."..."] key may hold.
var registryKey = regexp.MustCompile(`^[A-Za-z0-9.\-\[\]:]+$`)

// passwordVar names the environment variable of the i-th password.
func passwordVar(i int) string { return fmt.Sprintf("DOCKER_BOTTLE_REGISTRY_PASSWORD_%d", i) }

// WriteConfig writes a smolvm settings file that gives smolvm the
// credentials (smolvm-cli.md §2): for each registry a table with the user
// name and password_env; the passwords themselves appear only in Env.
// dir is where the file's private directory is made ("" means the system
// temp dir). Remove the file with Remove when smolvm is done.
func WriteConfig(dir string, creds []Credential) (*Config, error) {
	registries := map[string]map[string]string{}
	var env []string
	for i, c := range creds {
		if !registryKey.MatchString(c.Registry) {
			return nil, fmt.Errorf("smolvm config: bad registry name %q", c.Registry)
		}
		if _, dup := registries[c.Registry]; dup {
			return nil, fmt.Errorf("smolvm config: registry %s given twice", c.Registry)
		}
		if c.Username == "" || c.Password == "" {
			return nil, fmt.Errorf("smolvm config: registry %s: smolvm needs both a username and a password", c.Registry)
		}
		registries[c.Registry] = map[string]string{"username": c.Username, "password_env": passwordVar(i)}
		env = append(env, passwordVar(i)+"="+c.Password)
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by docker bottle for one `smolvm pack create`; removed afterwards.\n")
	doc := map[string]any{"images": map[string]any{"registries": registries}}
	if err := toml.NewEncoder(&buf).Encode(doc); err != nil {
		return nil, fmt.Errorf("smolvm config: %w", err)
	}
	d, err := os.MkdirTemp(dir, "docker-bottle-smolvm-")
	if err != nil {
		return nil, fmt.Errorf("smolvm config: %w", err)
	}
	p := filepath.Join(d, "config.toml")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		err = fmt.Errorf("smolvm config: %w", err)
		if rerr := os.RemoveAll(d); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing %s, which may hold registry credentials: %w", d, rerr))
		}
		return nil, err
	}
	return &Config{Path: p, Env: append([]string{"SMOLVM_CONFIG=" + p}, env...), dir: d}, nil
}

// Remove deletes the file and its directory.
func (c *Config) Remove() error {
	if c == nil || c.dir == "" {
		return nil
	}
	err := os.RemoveAll(c.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
