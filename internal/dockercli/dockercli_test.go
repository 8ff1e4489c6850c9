package dockercli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/context"
	"github.com/docker/cli/cli/context/docker"
)

type endpointCLI struct {
	cfg *configfile.ConfigFile
	ep  docker.Endpoint
}

func (e endpointCLI) ConfigFile() *configfile.ConfigFile { return e.cfg }
func (e endpointCLI) CurrentContext() string             { return "remote-ctx" }
func (e endpointCLI) DockerEndpoint() docker.Endpoint    { return e.ep }

func TestEndpointEnv(t *testing.T) {
	t.Setenv("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "/usr/bin/docker")
	t.Setenv("DOCKER_HOST", "unix:///stale.sock")
	cfgDir := t.TempDir()
	cli := endpointCLI{
		cfg: &configfile.ConfigFile{Filename: filepath.Join(cfgDir, "config.json")},
		ep: docker.Endpoint{
			EndpointMeta: docker.EndpointMeta{Host: "tcp://10.0.0.5:2376"},
			TLSData:      &context.TLSData{CA: []byte("ca"), Cert: []byte("cert"), Key: []byte("key")},
		},
	}
	env, cleanup, err := EndpointEnv(cli)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			t.Errorf("%s set twice", k)
		}
		m[k] = v
	}
	if _, ok := m["DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"]; ok {
		t.Errorf("the plugin re-exec marker is passed on: buildx would not run standalone")
	}
	if m["DOCKER_HOST"] != "tcp://10.0.0.5:2376" || m["DOCKER_CONTEXT"] != "remote-ctx" || m["DOCKER_CONFIG"] != cfgDir || m["DOCKER_TLS_VERIFY"] != "1" {
		t.Errorf("env %v", m)
	}
	certs := m["DOCKER_CERT_PATH"]
	for name, want := range map[string]string{"ca.pem": "ca", "cert.pem": "cert", "key.pem": "key"} {
		p := filepath.Join(certs, name)
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != want || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	cleanup()
	if _, err := os.Stat(certs); !os.IsNotExist(err) {
		t.Errorf("TLS files left after cleanup")
	}
}
