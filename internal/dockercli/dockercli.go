// Package dockercli runs a CLI plugin standalone against the same engine,
// context and configuration as the running plugin, and gives child
// processes the plugin's own terminal.
package dockercli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/config/configfile"
	ctxstore "github.com/docker/cli/cli/context"
	"github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/flags"
)

// Endpoint is what StandaloneEnv reads of the running CLI (command.Cli
// has it).
type Endpoint interface {
	ConfigFile() *configfile.ConfigFile
	CurrentContext() string
	DockerEndpoint() docker.Endpoint
}

// StandaloneEnv is the environment for a CLI plugin run standalone against
// the same engine, context and configuration as this one (compose's
// propagateDockerEndpoint), without writing the engine's TLS material
// anywhere: a named context is named (the plugin reads its TLS files from
// the context store in DOCKER_CONFIG); the default context's TLS files are
// named where the docker CLI read them (DOCKER_CERT_PATH, else the config
// folder). TLS files the CLI was given elsewhere (--tlscert and the like)
// cannot be named in the environment: that is an error saying what to do.
func StandaloneEnv(cli Endpoint) ([]string, error) {
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
	configDir := ""
	if cfg := cli.ConfigFile(); cfg != nil && cfg.Filename != "" {
		configDir = filepath.Dir(cfg.Filename)
		env = append(env, "DOCKER_CONFIG="+configDir)
	}
	if name := cli.CurrentContext(); name != "" && name != command.DefaultContextName {
		// Without DOCKER_HOST, DOCKER_CONTEXT decides.
		return append(env, "DOCKER_CONTEXT="+name), nil
	}
	// DOCKER_HOST makes the default context the plugin's too.
	ep := cli.DockerEndpoint()
	env = append(env, "DOCKER_HOST="+ep.Host)
	if ep.TLSData == nil {
		return env, nil
	}
	certDir := os.Getenv("DOCKER_CERT_PATH")
	if certDir == "" {
		certDir = configDir
	}
	if !sameTLSFiles(certDir, ep.TLSData) {
		return nil, fmt.Errorf("the engine's TLS files are not key.pem, cert.pem and ca.pem in %s, so buildx cannot be pointed at them: "+
			"make a docker context for the engine (`docker context create NAME --docker host=%s,ca=...,cert=...,key=...`) and use --context NAME, "+
			"or set DOCKER_CERT_PATH to a folder holding those three files", certDir, ep.Host)
	}
	env = append(env, "DOCKER_CERT_PATH="+certDir, "DOCKER_TLS=1")
	if !ep.SkipTLSVerify {
		env = append(env, "DOCKER_TLS_VERIFY=1")
	}
	return env, nil
}

// sameTLSFiles reports whether dir holds the TLS material tls, under the
// names the docker CLI reads from DOCKER_CERT_PATH.
func sameTLSFiles(dir string, tls *ctxstore.TLSData) bool {
	if dir == "" {
		return false
	}
	for name, want := range map[string][]byte{flags.DefaultKeyFile: tls.Key, flags.DefaultCertFile: tls.Cert, flags.DefaultCaFile: tls.CA} {
		got, err := os.ReadFile(filepath.Join(dir, name)) //nolint:gosec // G703: the folder the docker CLI read its TLS files from
		if len(want) == 0 && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			return false
		}
	}
	return true
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
