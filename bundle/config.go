package bundle

import (
	"github.com/docker-bottle/docker-bottle/bundle/conf"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/relay"
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
	// Relay carries inbound connections to the agent's published ports.
	Relay relay.Config `json:"relay,omitzero"`
}

// LoadConfig reads a bundle configuration; unknown fields are errors. Each
// daemon's constructor checks its own part.
func LoadConfig(path string) (Config, error) {
	return conf.Load(path, "bundle configuration", conf.Decode[Config])
}
