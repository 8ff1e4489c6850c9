// Package defaults holds the defaults of a bottle's policy in one place. The
// plugin's spec fills a bottle.yaml's gaps with them, and the bundle's
// daemons fall back to the same values when their config omits one, so
// that what the user is told and what the bundle enforces cannot drift
// apart. The default protected paths live with their matcher, in package
// protect.
package defaults

import (
	"strings"
	"time"
)

// ApprovalTimeout is how long a held request (a connection, a push, an
// agent's question) waits for a human before it is denied.
const ApprovalTimeout = 5 * time.Minute

// PushPattern is the ref glob the agent may push to when the policy names
// none: its own branch prefix. {name} stands for the bottle's name.
const PushPattern = "refs/heads/bottle/{name}/*"

// PushRef is PushPattern for one bottle.
func PushRef(bottle string) string { return strings.ReplaceAll(PushPattern, "{name}", bottle) }
