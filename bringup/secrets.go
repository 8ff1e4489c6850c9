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
