package stage

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
)

// Dirs are where the plugin keeps its files: state (bottles, stage dirs,
// the CA) under the docker config dir, like other plugins; large caches
// (registry blobs, artifacts) under the user's cache dir.
type Dirs struct {
	State string `json:"state"`
	Cache string `json:"cache"`
}

// DefaultDirs follows the docker CLI's config dir ($DOCKER_CONFIG or
// --config, default ~/.docker) and $DOCKER_BOTTLE_CACHE or the user cache
// dir.
func DefaultDirs() (Dirs, error) {
	cache := os.Getenv("DOCKER_BOTTLE_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return Dirs{}, fmt.Errorf("finding the cache dir: %w (set DOCKER_BOTTLE_CACHE)", err)
		}
		cache = filepath.Join(base, "docker-bottle")
	}
	return Dirs{State: filepath.Join(config.Dir(), "bottle"), Cache: cache}, nil
}

// Bottles holds one stage dir per bottle.
func (d Dirs) Bottles() string { return filepath.Join(d.State, "bottles") }

// Stage is the stage dir of the bottle called slug.
func (d Dirs) Stage(slug string) Dir { return At(filepath.Join(d.Bottles(), slug)) }

// CA holds the user's bottle CA (made once, key 0600).
func (d Dirs) CA() string { return filepath.Join(d.State, "ca") }

// Subnets holds one reservation file per allocated bundle subnet.
func (d Dirs) Subnets() string { return filepath.Join(d.State, "subnets") }

// Ensure makes dir and its parents with mode 0700.
func Ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
