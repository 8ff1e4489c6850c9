package smolvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/spec"
)

// portsFile records, in the stage dir, the host ports the machine was
// made with: smolvm lists only how many a machine has.
const portsFile = "smolvm-ports.json"

// machinePorts gives every port of the spec a host port (a free one on
// the host's loopback when the spec gives none) and records them.
func machinePorts(p plan.Plan) ([]smolvm.PortMap, error) {
	var out []smolvm.PortMap
	var resolved []spec.Port
	for _, port := range p.Spec.Ports {
		host := port.Host
		if host == 0 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("finding a free port on 127.0.0.1 for the agent's port %d: %w", port.Agent, err)
			}
			host = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		out = append(out, smolvm.PortMap{Host: host, Guest: port.Agent})
		resolved = append(resolved, spec.Port{Host: host, Agent: port.Agent})
	}
	b, err := json.Marshal(resolved)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.StageDir, portsFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("recording the machine's ports: %w", err)
	}
	return out, nil
}

// PublishedPorts are the agent's ports of a smolvm bottle with the host
// ports its machine was made with.
func PublishedPorts(p plan.Plan) ([]spec.Port, error) {
	b, err := os.ReadFile(filepath.Join(p.StageDir, portsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []spec.Port
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("the recorded ports of %s: %w", p.Slug, err)
	}
	return ps, nil
}

// PublishedPorts makes the smolvm backend a backend.PortPublisher.
func (s Smolvm) PublishedPorts(p plan.Plan) ([]spec.Port, error) { return PublishedPorts(p) }
