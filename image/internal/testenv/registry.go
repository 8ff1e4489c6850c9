package testenv

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// AuthRegistry serves a registry on 127.0.0.1 that demands basic auth with
// user and password, standing for the user's own registry. It returns the
// host:port.
func AuthRegistry(t testing.TB, user, password string) string {
	t.Helper()
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Helper is a credential the test's docker-credential-<name> script returns.
type Helper struct {
	// Name is the helper's name: the script is docker-credential-<Name>.
	Name   string
	Server string
	// Username and Secret are returned for Server; Username "<token>"
	// makes Secret an identity token, as docker does.
	Username, Secret string
}

// DockerConfig writes a docker CLI config dir whose credentials come from
// credential-helper scripts (put on PATH): configJSON is config.json's
// content. It returns the loaded configuration, as dockerCli.ConfigFile()
// would.
func DockerConfig(t *testing.T, configJSON string, helpers ...Helper) *configfile.ConfigFile {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, h := range helpers {
		script := fmt.Sprintf(`#!/bin/sh
# docker credential helper for a test: get only.
[ "$1" = get ] || { echo "unsupported" >&2; exit 1; }
read server
if [ "$server" = %q ]; then
	printf '{"ServerURL":"%%s","Username":"%%s","Secret":"%%s"}\n' %q %q %q
	exit 0
fi
echo "credentials not found in native keychain"
exit 1
`, h.Server, h.Server, h.Username, h.Secret)
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+h.Name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(configJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
