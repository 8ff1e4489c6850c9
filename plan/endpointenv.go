package plan

import "strings"

// endpointKeys are the guest env variables whose values name the bundle's
// endpoints; GIT_CONFIG_ variables are matched by prefix (their keys name
// the gate).
var endpointKeys = map[string]bool{
	"HTTPS_PROXY": true, "HTTP_PROXY": true, "https_proxy": true, "http_proxy": true,
	"NO_PROXY": true, "no_proxy": true,
	"BOTTLE_GATE_URL": true, "BOTTLE_SUPERVISE_URL": true,
}

// EndpointEnv is the part of an agent's guest env that names the bundle's
// endpoints: proxy, gate and supervisor URLs, NO_PROXY and git's settings
// for the gate. In loopback mode these name the bundle's published host
// ports, which change when the bundle restarts, while a smolvm machine's
// recorded env cannot change; so every exec into the machine passes them
// again (`machine exec -e` wins over the recorded env). None is a secret.
func EndpointEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if endpointKeys[k] || strings.HasPrefix(k, "GIT_CONFIG_") {
			out = append(out, kv)
		}
	}
	return out
}
