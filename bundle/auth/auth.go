// Package auth checks the per-bottle tokens that every bundle daemon demands.
// The daemons' ports are published on the host's loopback, where any local
// process can reach them, so no request is served without a token.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Equal reports whether got equals want, in time that depends on neither
// value: both are hashed first so that not even their lengths leak.
func Equal(got, want string) bool {
	if want == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// BasicPassword returns the password of an HTTP Basic credential as found in
// an Authorization or Proxy-Authorization header. The user name is ignored:
// clients (git, curl, Node) insist on one, the token alone is the secret.
func BasicPassword(header string) (string, bool) {
	scheme, value, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return "", false
	}
	_, pass, ok := strings.Cut(string(raw), ":")
	return pass, ok
}

// Bearer returns the token of an "Authorization: Bearer ..." header.
func Bearer(header string) (string, bool) {
	scheme, value, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	value = strings.TrimSpace(value)
	return value, value != ""
}
