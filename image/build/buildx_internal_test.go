package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/context"
	"github.com/docker/cli/cli/context/docker"
)

func TestBuildxArgs(t *testing.T) {
	b := Buildx{Progress: "rawjson"}
	got := b.args(Options{
		ContextDir: "/ctx", Dockerfile: "sub/Dockerfile", Tag: "bottle/agent:x", Target: "agent", NoCache: true,
		BuildArgs: map[string]string{"B": "2", "A": "1"}, Labels: map[string]string{"l": "v"},
	}, "/tmp/md.json")
	want := "build --load --tag bottle/agent:x --metadata-file /tmp/md.json --progress rawjson --file /ctx/sub/Dockerfile " +
		"--build-arg A=1 --build-arg B=2 --label l=v --target agent --no-cache /ctx"
	if strings.Join(got, " ") != want {
		t.Errorf("args\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	got = Buildx{}.args(Options{ContextDir: "/ctx", Tag: "t", DockerfileContent: []byte("FROM scratch")}, "/m")
	if want := "build --load --tag t --metadata-file /m --progress plain --file - /ctx"; strings.Join(got, " ") != want {
		t.Errorf("inline args %s", strings.Join(got, " "))
	}
}

type endpointCLI struct {
	cfg *configfile.ConfigFile
	ep  docker.Endpoint
}

func (e endpointCLI) ConfigFile() *configfile.ConfigFile { return e.cfg }
func (e endpointCLI) CurrentContext() string             { return "remote-ctx" }
func (e endpointCLI) DockerEndpoint() docker.Endpoint    { return e.ep }
func (e endpointCLI) BuildKitEnabled() (bool, error)     { return true, nil }

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

func TestBuildxProgress(t *testing.T) {
	for _, c := range []struct {
		mode     string
		terminal bool
		want     string
	}{
		{"auto", true, "auto"}, {"auto", false, "plain"}, {"", false, "plain"},
		{"tty", true, "tty"}, {"tty", false, "plain"},
		{"plain", true, "plain"}, {"quiet", true, "quiet"}, {"json", false, "rawjson"},
	} {
		if got := BuildxProgress(c.mode, c.terminal); got != c.want {
			t.Errorf("BuildxProgress(%q, %v) = %q, want %q", c.mode, c.terminal, got, c.want)
		}
	}
}
