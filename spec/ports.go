package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Port is one port the agent listens on, published on the host's loopback
// as `docker run -p [HOSTPORT:]PORT` does: written "PORT" or
// "HOSTPORT:PORT". Host 0 means a free port chosen at publishing.
type Port struct {
	Host  int
	Agent int
}

// ParsePort reads "PORT" or "HOSTPORT:PORT"; an address ("IP:H:P") is
// refused, since a bottle publishes on the host's loopback only.
func ParsePort(s string) (Port, error) {
	parts := strings.Split(strings.TrimSuffix(strings.TrimSpace(s), "/tcp"), ":")
	num := func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("port %q: %q is not a port in the range 1-65535; write PORT or HOSTPORT:PORT, e.g. 3000 or 8080:3000", s, v)
		}
		return n, nil
	}
	switch len(parts) {
	case 1:
		a, err := num(parts[0])
		return Port{Agent: a}, err
	case 2:
		h, err := num(parts[0])
		if err != nil {
			return Port{}, err
		}
		a, err := num(parts[1])
		return Port{Host: h, Agent: a}, err
	}
	return Port{}, fmt.Errorf("port %q: write PORT or HOSTPORT:PORT (e.g. 3000 or 8080:3000); a bottle publishes on 127.0.0.1 only, so no address is given", s)
}

// String writes p as ParsePort reads it.
func (p Port) String() string {
	if p.Host == 0 {
		return strconv.Itoa(p.Agent)
	}
	return strconv.Itoa(p.Host) + ":" + strconv.Itoa(p.Agent)
}

// UnmarshalYAML reads 3000 or "8080:3000".
func (p *Port) UnmarshalYAML(n ast.Node) error {
	v, err := ParsePort(scalar(n))
	if err != nil {
		return located(n, err.Error())
	}
	*p = v
	return nil
}

// MarshalYAML writes p as ParsePort reads it.
func (p Port) MarshalYAML() (any, error) { return p.String(), nil }

// MarshalJSON writes p as ParsePort reads it.
func (p Port) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Port) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a port is a string such as \"8080:3000\": %w", err)
	}
	v, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// CheckPorts says what is wrong with a list of ports: an agent port or a
// host port given twice. It returns one message per problem, at the index
// of the later entry.
func CheckPorts(ports []Port) map[int]string {
	probs := map[int]string{}
	agent, host := map[int]int{}, map[int]int{}
	for i, p := range ports {
		if p.Agent < 1 || p.Agent > 65535 || p.Host < 0 || p.Host > 65535 {
			probs[i] = fmt.Sprintf("port %s is out of range 1-65535", p)
			continue
		}
		if j, ok := agent[p.Agent]; ok {
			probs[i] = fmt.Sprintf("the agent's port %d is published twice (entries %d and %d): give each port once", p.Agent, j+1, i+1)
			continue
		}
		agent[p.Agent] = i
		if p.Host == 0 {
			continue
		}
		if j, ok := host[p.Host]; ok {
			probs[i] = fmt.Sprintf("host port %d is given twice (entries %d and %d): give each host port once, or leave it out for a free one", p.Host, j+1, i+1)
			continue
		}
		host[p.Host] = i
	}
	return probs
}
