package testenv

import "testing"

// needsE2E fails a test that reaches for the engine, the docker CLI or the
// test tools in the unit build: such a test belongs in a file that begins
// with `//go:build e2e`, which make e2e runs. A forgotten tag fails here
// on every machine, with or without an engine, instead of slowing make test
// where an engine answers and failing it where none does.
func needsE2E(t testing.TB, what string) {
	t.Helper()
	if !E2E {
		t.Fatalf("%s is for e2e tests only: put this test in a file that begins with `//go:build e2e` (make e2e runs them)", what)
	}
}
