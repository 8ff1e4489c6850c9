//go:build !e2e

package testenv

// E2E is false in the unit build (make test): helpers that need the engine
// or its tools fail the test that calls them.
const E2E = false
