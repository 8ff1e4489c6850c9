package bootstrap

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// proxyVars get the bottle's token as their password, for the agent's own
// process only: the environment the engine or smolvm stores holds none.
var proxyVars = []string{"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"}

// readToken reads the bottle's token from the file the guest env names.
func readToken(env *envList) (string, error) {
	file := env.get(guest.EnvTokenFile)
	if file == "" {
		return "", fmt.Errorf("%s is not set: run this in a bottle, whose environment sets it", guest.EnvTokenFile)
	}
	tok, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the bottle token: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return "", fmt.Errorf("the bottle token file %s is empty", file)
	}
	return token, nil
}

// withProxyToken returns env with the bottle's token as the password of
// each proxy URL that points at the bundle (the git gate's host): a proxy
// set to anything else (an exec's own -e) does not get the token.
func withProxyToken(env *envList, token string) *envList {
	gate, err := url.Parse(env.get(guest.EnvGateURL))
	if err != nil || gate.Hostname() == "" {
		return env
	}
	out := env
	for _, k := range proxyVars {
		v := env.get(k)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || u.User != nil || u.Hostname() != gate.Hostname() {
			continue
		}
		u.User = url.UserPassword("bottle", token)
		out = out.with(k, u.String())
	}
	return out
}

// lookPath finds a command on a PATH (the agent's, or an exec's).
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not found in PATH=%s", name, path)
}

// envList is an environment in os.Environ's form, changed by copying.
type envList struct{ kv []string }

func newEnv(kv []string) *envList { return &envList{kv: append([]string(nil), kv...)} }

func (e *envList) get(k string) string {
	for i := len(e.kv) - 1; i >= 0; i-- {
		if key, v, ok := strings.Cut(e.kv[i], "="); ok && key == k {
			return v
		}
	}
	return ""
}

func (e *envList) with(k, v string) *envList {
	out := make([]string, 0, len(e.kv)+1)
	for _, kv := range e.kv {
		if key, _, _ := strings.Cut(kv, "="); key != k {
			out = append(out, kv)
		}
	}
	return &envList{kv: append(out, k+"="+v)}
}

func (e *envList) list() []string { return append([]string(nil), e.kv...) }
