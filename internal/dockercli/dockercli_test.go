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
	cfg  *configfile.ConfigFile
	name string
	ep   docker.Endpoint
}

func (e endpointCLI) ConfigFile() *configfile.ConfigFile { return e.cfg }
func (e endpointCLI) CurrentContext() string             { return e.name }
func (e endpointCLI) DockerEndpoint() docker.Endpoint    { return e.ep }

var tlsData = &context.TLSData{CA: []byte("the-ca"), Cert: []byte("the-cert"), Key: []byte("the-private-key")}

// standaloneEnv runs StandaloneEnv with TMPDIR and the config folder
// watched: it must write no file, and no variable may carry TLS material.
func standaloneEnv(t *testing.T, cli endpointCLI) (map[string]string, error) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cfgDir := filepath.Dir(cli.cfg.Filename)
	before := files(t, cfgDir)
	env, err := StandaloneEnv(cli)
	if left := files(t, tmp); len(left) > 0 {
		t.Errorf("files written to TMPDIR: %v", left)
	}
	if after := files(t, cfgDir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("config folder changed: %v, was %v", after, before)
	}
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			t.Errorf("%s set twice", k)
		}
		for _, secret := range [][]byte{tlsData.Key, tlsData.Cert, tlsData.CA} {
			if strings.Contains(v, string(secret)) {
				t.Errorf("%s carries TLS material", k)
			}
		}
		m[k] = v
	}
	if _, ok := m["DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"]; ok {
		t.Errorf("the plugin re-exec marker is passed on: buildx would not run standalone")
	}
	return m, err
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func setup(t *testing.T) string {
	t.Setenv("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "/usr/bin/docker")
	t.Setenv("DOCKER_HOST", "unix:///stale.sock")
	t.Setenv("DOCKER_CONTEXT", "stale")
	t.Setenv("DOCKER_CERT_PATH", "")
	return t.TempDir()
}

// TestStandaloneEnvNamedContext: a context with TLS is named, and the
// plugin reads its TLS files from the context store; nothing is written.
func TestStandaloneEnvNamedContext(t *testing.T) {
	cfgDir := setup(t)
	m, err := standaloneEnv(t, endpointCLI{
		cfg:  &configfile.ConfigFile{Filename: filepath.Join(cfgDir, "config.json")},
		name: "remote-ctx",
		ep:   docker.Endpoint{EndpointMeta: docker.EndpointMeta{Host: "tcp://10.0.0.5:2376"}, TLSData: tlsData},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m["DOCKER_CONTEXT"] != "remote-ctx" || m["DOCKER_CONFIG"] != cfgDir {
		t.Errorf("env %v", m)
	}
	for _, k := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"} {
		if v, ok := m[k]; ok {
			t.Errorf("%s=%s would override the context", k, v)
		}
	}
}

// TestStandaloneEnvDefaultContext: the default context's host is passed
// on, and its TLS files are named where the CLI read them; TLS files read
// from elsewhere are refused with what to do.
func TestStandaloneEnvDefaultContext(t *testing.T) {
	cfgDir := setup(t)
	cfg := &configfile.ConfigFile{Filename: filepath.Join(cfgDir, "config.json")}
	plain := endpointCLI{cfg: cfg, name: "default", ep: docker.Endpoint{EndpointMeta: docker.EndpointMeta{Host: "unix:///var/run/docker.sock"}}}
	m, err := standaloneEnv(t, plain)
	if err != nil {
		t.Fatal(err)
	}
	if m["DOCKER_HOST"] != "unix:///var/run/docker.sock" || m["DOCKER_CONTEXT"] != "" || m["DOCKER_CERT_PATH"] != "" {
		t.Errorf("no TLS: env %v", m)
	}

	withTLS := endpointCLI{cfg: cfg, name: "default", ep: docker.Endpoint{EndpointMeta: docker.EndpointMeta{Host: "tcp://10.0.0.5:2376"}, TLSData: tlsData}}
	_, err = standaloneEnv(t, withTLS)
	if err == nil || !strings.Contains(err.Error(), "docker context create") {
		t.Errorf("TLS files elsewhere: got %v, want an error saying to make a context", err)
	}

	certDir := t.TempDir()
	for name, b := range map[string][]byte{"ca.pem": tlsData.CA, "cert.pem": tlsData.Cert, "key.pem": tlsData.Key} {
		if err := os.WriteFile(filepath.Join(certDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("DOCKER_CERT_PATH", certDir)
	m, err = standaloneEnv(t, withTLS)
	if err != nil {
		t.Fatal(err)
	}
	if m["DOCKER_HOST"] != "tcp://10.0.0.5:2376" || m["DOCKER_CERT_PATH"] != certDir || m["DOCKER_TLS_VERIFY"] != "1" {
		t.Errorf("TLS from DOCKER_CERT_PATH: env %v", m)
	}
}
