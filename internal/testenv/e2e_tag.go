//go:build e2e

package testenv

// E2E is true in the engine test build (`go test -tags e2e`, make e2e).
const E2E = true
