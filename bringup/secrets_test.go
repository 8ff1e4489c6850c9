package bringup

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-bottle/docker-bottle/spec"
)

func TestSecretValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("  from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"A_KEY": "from-the-env"}
	secrets := []spec.Secret{
		{Host: "a.test", Header: "x-api-key", FromEnv: "A_KEY"},
		{Host: "b.test", Header: "Authorization", FromFile: file},
		{Host: "c.test", Header: "x-api-key", FromEnv: "UNSET", Optional: true},
	}
	got, err := SecretValues(secrets, func(k string) string { return env[k] })
	want := map[string]string{"$A_KEY": "from-the-env", file: "from-the-file"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("SecretValues = %v, %v; want %v", got, err, want)
	}
	secrets[2].Optional = false
	if _, err := SecretValues(secrets, func(k string) string { return env[k] }); !errors.Is(err, ErrSecretMissing) {
		t.Errorf("a required secret without a value: %v", err)
	}
}
