package bundle

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

// Config is the whole bundle's configuration: one file in the stage dir,
// written by the plugin, read by `bottle-bundle serve`. Paths in it are as
// the bundle container sees them.
type Config struct {
	Bottle     string            `json:"bottle"`
	Proxy      proxy.Config      `json:"proxy"`
	Gate       gate.Config       `json:"gate"`
	Supervisor supervisor.Config `json:"supervisor"`
}

// LoadConfig reads a bundle configuration; unknown fields are errors.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading the bundle configuration: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("decoding %s: %w", path, err)
	}
	return c, nil
}
