// Package dockercli runs a CLI plugin standalone against the same engine,
// context and configuration as the running plugin, and gives child
// processes the plugin's own terminal.
package dockercli

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/flags"
)

// Endpoint is what EndpointEnv reads of the running CLI (command.Cli has
// it).
type Endpoint interface {
	ConfigFile() *configfile.ConfigFile
	CurrentContext() string
	DockerEndpoint() docker.Endpoint
}

// EndpointEnv is the environment for a CLI plugin run standalone against the
// same engine, context and configuration as this one (compose's
// propagateDockerEndpoint). Engine TLS material goes into 0600 files in a
// private directory that cleanup removes.
func EndpointEnv(cli Endpoint) ([]string, func(), error) {
	cleanup := func() {}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		// Without the re-exec marker a plugin binary runs standalone.
		case metadata.ReexecEnvvar, "DOCKER_CONTEXT", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DOCKER_CONTEXT="+cli.CurrentContext())
	if cfg := cli.ConfigFile(); cfg != nil && cfg.Filename != "" {
		env = append(env, "DOCKER_CONFIG="+filepath.Dir(cfg.Filename))
	}
	ep := cli.DockerEndpoint()
	env = append(env, "DOCKER_HOST="+ep.Host)
	if ep.TLSData != nil {
		dir, err := os.MkdirTemp("", "docker-bottle-tls-")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		files := map[string][]byte{flags.DefaultKeyFile: ep.TLSData.Key, flags.DefaultCertFile: ep.TLSData.Cert, flags.DefaultCaFile: ep.TLSData.CA}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				cleanup()
				return nil, func() {}, err
			}
		}
		env = append(env, "DOCKER_CERT_PATH="+dir, "DOCKER_TLS=1")
		if !ep.SkipTLSVerify {
			env = append(env, "DOCKER_TLS_VERIFY=1")
		}
	}
	return env, cleanup, nil
}

// InFile and OutFile give a child process the plugin's own stdin, stdout
// or stderr file when r or w is the docker CLI's stream wrapping it: a
// child given the wrapper gets a pipe instead, and then cannot see the
// terminal (no raw mode, no window size, `docker exec -t` refusing), and
// its stdin copy would keep it waiting for one more key after the command
// ended.
func InFile(r io.Reader) io.Reader {
	if f, ok := r.(interface{ FD() uintptr }); ok && f.FD() == os.Stdin.Fd() {
		return os.Stdin
	}
	return r
}

// OutFile is InFile for stdout and stderr.
func OutFile(w io.Writer) io.Writer {
	if f, ok := w.(interface{ FD() uintptr }); ok {
		switch f.FD() {
		case os.Stdout.Fd():
			return os.Stdout
		case os.Stderr.Fd():
			return os.Stderr
		}
	}
	return w
}
