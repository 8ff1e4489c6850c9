//go:build !unix

package store

// Lock is a no-op where flock(2) does not exist; the plugin targets Linux and
// macOS.
func (s *Store) Lock(exclusive bool) (func(), error) { return func() {}, nil }
