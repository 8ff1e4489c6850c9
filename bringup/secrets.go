package bringup

import (
	"os"

	"github.com/docker-bottle/docker-bottle/spec"
)

// CheckSecrets refuses, as WriteConfig would, a required secret without a
// value on the host (getenv nil: os.Getenv): a run checks them before it
// makes anything, so that `run --dry-run` refuses it too.
func CheckSecrets(secrets []spec.Secret, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, s := range secrets {
		if _, err := secretValue(s, getenv); err != nil {
			return err
		}
	}
	return nil
}

// SecretValues returns the host values of secrets that have one, keyed by
// where they come from ($VAR or the file), for checks that must keep them
// out of the bottle (the user's agent settings); getenv nil: os.Getenv.
func SecretValues(secrets []spec.Secret, getenv func(string) string) (map[string]string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	values := map[string]string{}
	for _, s := range secrets {
		v, err := secretValue(s, getenv)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue
		}
		name := s.FromFile
		if s.FromEnv != "" {
			name = "$" + s.FromEnv
		}
		values[name] = v
	}
	return values, nil
}
