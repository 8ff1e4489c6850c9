package smolvm

import (
	"fmt"
	"strings"
)

// EnvVar is one guest environment variable passed with `-e NAME=VALUE`.
//
// smolvm stores `machine create -e` values in plain text in its database
// (printed by `machine ls -v`), and any `-e` is visible on the smolvm
// command line. So an EnvVar can only be made with PlainEnv, which refuses
// (at call time, with ErrSecretEnv) names that look like secrets, or with
// NotSecretEnv, which says out loud that a secret-looking name holds none.
// Real credentials never go to the guest at all: the bundle adds them on the
// way out.
type EnvVar struct {
	name, value string
	notSecret   bool
}

// PlainEnv is a guest variable that holds no secret. Names that look like
// secrets (*_TOKEN, *_KEY, *SECRET*, *PASSWORD*, ...) make the smolvm call
// fail with ErrSecretEnv; use NotSecretEnv when such a name really holds
// nothing secret.
func PlainEnv(name, value string) EnvVar { return EnvVar{name: name, value: value} }

// NotSecretEnv is a guest variable whose name looks like a secret but whose
// value is known not to be one (a placeholder, a public key path, ...).
func NotSecretEnv(name, value string) EnvVar {
	return EnvVar{name: name, value: value, notSecret: true}
}

// Name returns the variable's name.
func (e EnvVar) Name() string { return e.name }

// Value returns the variable's value.
func (e EnvVar) Value() string { return e.value }

// String shows the name only, so that an EnvVar printed in a log or an
// error never shows its value.
func (e EnvVar) String() string { return e.name + "=…" }

// LooksSecret reports whether a variable name looks like it holds a secret.
func LooksSecret(name string) bool {
	n := strings.ToUpper(name)
	for _, suffix := range []string{"_TOKEN", "_KEY", "_PASS", "_PASSWD", "_PAT"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	for _, part := range []string{"SECRET", "PASSWORD", "CREDENTIAL", "APIKEY", "API_KEY", "PRIVATE_KEY", "AUTH_TOKEN"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return n == "TOKEN" || n == "KEY"
}

func (e EnvVar) validate() error {
	if e.name == "" || strings.ContainsAny(e.name, "=\x00") {
		return fmt.Errorf("%w: guest variable name %q is not valid", ErrInvalidOption, e.name)
	}
	if strings.ContainsRune(e.value, 0) {
		return fmt.Errorf("%w: guest variable %s holds a NUL byte", ErrInvalidOption, e.name)
	}
	if !e.notSecret && LooksSecret(e.name) {
		return fmt.Errorf("%w: %s looks like a secret, and smolvm keeps -e values in plain text "+
			"(database, `machine ls -v`, process list); let the bundle inject credentials instead, "+
			"or use smolvm.NotSecretEnv if the value is not secret", ErrSecretEnv, e.name)
	}
	return nil
}

func envArgs(env []EnvVar) ([]string, error) {
	var args []string
	for _, e := range env {
		if err := e.validate(); err != nil {
			return nil, err
		}
		args = append(args, "-e", e.name+"="+e.value)
	}
	return args, nil
}
