package plan

import (
	"strings"
	"testing"
)

// TestEndpointEnvFollowsThePorts: after a restart gives the bundle other
// ports, EndpointEnv names the new ones, covers every variable that names
// an endpoint, and holds nothing else (no file paths, no user env).
func TestEndpointEnvFollowsThePorts(t *testing.T) {
	p := newPlan(t, "smolvm", "loopback")
	before := p.WithEndpoints(HostPorts{Proxy: 40001, Gate: 40002, Supervise: 40003})
	after := p.WithEndpoints(HostPorts{Proxy: 41001, Gate: 41002, Supervise: 41003})
	env := EndpointEnv(after.Smolvm.GuestEnv)
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		if got[k] != "http://100.96.0.1:41001" {
			t.Errorf("%s=%q", k, got[k])
		}
	}
	if got["BOTTLE_GATE_URL"] != "http://100.96.0.1:41002/" || got["BOTTLE_SUPERVISE_URL"] != "http://100.96.0.1:41003" ||
		got["NO_PROXY"] != "100.96.0.1" || got["GIT_CONFIG_COUNT"] == "" || !strings.Contains(got["GIT_CONFIG_KEY_0"], ":41002/") {
		t.Errorf("endpoint env %v", env)
	}
	// Every variable of the guest env that changed with the ports is in
	// it, and nothing that did not.
	old := map[string]string{}
	for _, kv := range before.Smolvm.GuestEnv {
		k, v, _ := strings.Cut(kv, "=")
		old[k] = v
	}
	for _, kv := range after.Smolvm.GuestEnv {
		k, v, _ := strings.Cut(kv, "=")
		if _, in := got[k]; old[k] != v && !in {
			t.Errorf("%s changed with the ports but is not in the endpoint env", k)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "SSL_") || strings.HasSuffix(k, "_FILE") {
			t.Errorf("%s is not an endpoint", k)
		}
	}
}
