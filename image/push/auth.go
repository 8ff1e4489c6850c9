package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain resolves registry credentials from the docker CLI configuration
// (what dockerCli.ConfigFile() returns): credHelpers, credsStore and auths,
// as `docker push` would. authn.DefaultKeychain is not used: it reads
// ~/.docker/config.json and ignores `docker --config DIR`.
func Keychain(cfg *configfile.ConfigFile) authn.Keychain {
	return &configKeychain{cfg: cfg}
}

type configKeychain struct {
	cfg *configfile.ConfigFile
}

func (k *configKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.cfg == nil {
		return authn.Anonymous, nil
	}
	key := r.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	ac, err := k.cfg.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("read the credentials for %s from the docker CLI configuration (credential helper or credsStore): %w", key, err)
	}
	cfg := authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}

// ErrTokenOnly is returned by BasicCredentials when the registry's
// credentials are an identity or registry token.
var ErrTokenOnly = errors.New("smolvm only supports basic username/password registry credentials, and the docker CLI configuration holds only a token for this registry")

// BasicCredentials returns the user name and password the keychain holds for
// registry (host[:port]); empty strings when it holds none (anonymous).
func BasicCredentials(kc authn.Keychain, registry string) (user, password string, err error) {
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return "", "", fmt.Errorf("bad registry %q: %w", registry, err)
	}
	a, err := kc.Resolve(reg)
	if err != nil {
		return "", "", err
	}
	cfg, err := authn.Authorization(context.Background(), a)
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s: %w", registry, err)
	}
	user, password = cfg.Username, cfg.Password
	if cfg.Auth != "" && (user == "" || password == "") {
		raw, err := base64.StdEncoding.DecodeString(cfg.Auth)
		if err != nil {
			return "", "", fmt.Errorf("credentials for %s: malformed auth field in the docker CLI configuration", registry)
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", fmt.Errorf("credentials for %s: malformed auth field in the docker CLI configuration", registry)
		}
		user, password = u, p
	}
	if password == "" && (cfg.IdentityToken != "" || cfg.RegistryToken != "") {
		return "", "", fmt.Errorf("registry %s: %w; log in with a username and password or an access token used as password (`docker login -u USER %s`)", registry, ErrTokenOnly, registry)
	}
	return user, password, nil
}
