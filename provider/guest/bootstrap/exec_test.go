package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// TestExecTarget: `bottle-bundle exec` runs the user's command with the
// bottle's token in the proxy URLs that point at the bundle, the exec's own
// variables kept, and nothing else changed.
func TestExecTarget(t *testing.T) {
	r := newBottleRoot(t)
	r.fakeAgent(t, "tool", "exit 0")
	env := append(slices.Clone(r.env), "FOO=bar")
	var stderr bytes.Buffer
	path, argv, got, _, err := execTarget([]string{"--", "tool", "-x"}, env, &stderr)
	if err != nil || path != filepath.Join(r.bin, "tool") || !slices.Equal(argv, []string{"tool", "-x"}) || stderr.Len() > 0 {
		t.Fatalf("execTarget: %q %q %v %q", path, argv, err, stderr.String())
	}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		if v := envValue(got, k); v != "http://bottle:"+testToken+"@127.0.0.1:3128" {
			t.Errorf("%s=%q", k, v)
		}
	}
	for _, kv := range got {
		if strings.Contains(kv, testToken) && !strings.Contains(strings.ToLower(kv), "_proxy=") {
			t.Errorf("the token leaked into %s", kv)
		}
	}
	if envValue(got, "FOO") != "bar" || envValue(got, "GIT_CONFIG_COUNT") != envValue(env, "GIT_CONFIG_COUNT") ||
		envValue(got, "SSL_CERT_FILE") == "" || len(got) != len(env) {
		t.Errorf("the rest of the environment changed: %q", got)
	}

	// A proxy of the exec's own (-e) that is not the bundle gets no token.
	_, _, got, _, _ = execTarget([]string{"tool"}, append(slices.Clone(env), "HTTPS_PROXY=http://elsewhere.example:3128"), &stderr)
	if v := envValue(got, "HTTPS_PROXY"); v != "http://elsewhere.example:3128" {
		t.Errorf("a foreign proxy got the token: %q", v)
	}

	// Without the token the command still runs, and the user is told why
	// the proxy will refuse it.
	stderr.Reset()
	noToken := append(slices.Clone(env), guest.EnvTokenFile+"="+filepath.Join(r.dir, "nosuch"))
	_, _, got, _, err = execTarget([]string{"tool"}, noToken, &stderr)
	if err != nil || strings.Contains(strings.Join(got, "\n"), testToken) || !strings.Contains(stderr.String(), "407") {
		t.Errorf("without a token: %v %q", err, stderr.String())
	}

	if _, _, _, code, err := execTarget([]string{"--", "nosuchtool"}, env, &stderr); code != exitNotFound || err == nil {
		t.Errorf("a missing command: exit %d %v", code, err)
	}
	if _, _, _, code, err := execTarget([]string{"--"}, env, &stderr); code != 2 || err == nil {
		t.Errorf("no command: exit %d %v", code, err)
	}
}

// TestExecExitCodes: an exec whose command cannot run ends with a shell's
// exit code, which main passes on without a word more.
func TestExecExitCodes(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for args, want := range map[string]guest.ExitCode{"": 2, "nosuchtool": exitNotFound} {
		var code guest.ExitCode
		if err := Exec(context.Background(), []string{"--", args}); !errors.As(err, &code) || code != want {
			t.Errorf("exec %q: %v, want exit code %d", args, err, want)
		}
	}
}
