package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdict is a report card's mark.
type Verdict string

// The marks, from good to bad.
const (
	Pass Verdict = "PASS"
	Warn Verdict = "WARN"
	Fail Verdict = "FAIL"
)

func (v Verdict) rank() int {
	switch v {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// worst is the lowest of vs: FAIL before WARN before PASS.
func worst(vs ...Verdict) Verdict {
	w := Pass
	for _, v := range vs {
		if v.rank() > w.rank() {
			w = v
		}
	}
	return w
}

// Expect is where the probe ran, which decides what some observations mean.
type Expect struct {
	// Backend is "smolvm" or "docker".
	Backend string `json:"backend"`
	// NetworkMode is "bridge" or "loopback" (smolvm), "internal" (docker).
	NetworkMode string `json:"network_mode"`
}

// loopbackExposed is the documented exposure of the smolvm loopback mode:
// the guest reaches every port on the host's loopback.
func (e Expect) loopbackExposed() bool { return e.Backend == "smolvm" && e.NetworkMode == "loopback" }

// Item is the verdict on one check.
type Item struct {
	Check    Kind    `json:"check"`
	Target   string  `json:"target,omitempty"`
	Verdict  Verdict `json:"verdict"`
	Evidence string  `json:"evidence"`
}

// PromiseResult is one of DESIGN.md's promises, with the verdict on each
// check that bears on it; its own verdict is the worst of theirs.
type PromiseResult struct {
	Promise int     `json:"promise"`
	Title   string  `json:"title"`
	Verdict Verdict `json:"verdict"`
	Items   []Item  `json:"items"`
}

// Card is the report card of one bottle: `docker bottle check` prints it
// and exits 1 when it Failed.
type Card struct {
	Backend     string          `json:"backend"`
	NetworkMode string          `json:"network_mode"`
	Promises    []PromiseResult `json:"promises"`
}

// Titles of the promises (DESIGN.md), by number.
var Titles = map[int]string{
	1: "The agent can do its job at full speed",
	2: "It can reach nothing else",
	3: "Its real credentials never enter the bottle",
	4: "Its git changes arrive as branches the user reviews",
	5: "A human can see what it did and be asked",
	6: "Nothing is left behind",
}

// promiseKinds are the checks that bear on promises 1 to 5; promise 6 (the
// cleanup) is observed by the plugin, which adds it with Card.Add.
var promiseKinds = []struct {
	promise int
	kinds   []Kind
}{
	{1, []Kind{KindAllowed, KindGitClone}},
	{2, []Kind{KindUnlisted, KindDirect, KindLookup, KindLoopback, KindProxyNoToken,
		KindNonRoot, KindNoCapabilities, KindNoNewPrivs, KindReadOnlyRoot}},
	{3, []Kind{KindSecrets}},
	{4, []Kind{KindGitPushBranch, KindGitPushProtected}},
	{5, []Kind{KindEvent, KindOperatorRoute}},
}

// notChecked says what to give the probe when a kind is missing.
var notChecked = map[Kind]string{
	KindAllowed:          "no allowed URL was tried (--allowed)",
	KindGitClone:         "no clone was tried",
	KindUnlisted:         "no unlisted URL was tried (--unlisted)",
	KindDirect:           "no direct connection was tried (--direct)",
	KindLookup:           "no name lookup was tried (--lookup)",
	KindLoopback:         "no host-loopback port was tried (--loopback)",
	KindProxyNoToken:     "the proxy was not asked without a token",
	KindSecrets:          "the secret search did not run",
	KindGitPushBranch:    "no push to the bottle's branch was tried",
	KindGitPushProtected: "no push to a protected ref was tried",
	KindEvent:            "no event was posted",
	KindOperatorRoute:    "no operator route was tried",
	KindNonRoot:          "the probe did not report its uid",
	KindNoCapabilities:   "the probe did not report its capabilities",
	KindNoNewPrivs:       "the probe did not report no_new_privs",
	KindReadOnlyRoot:     "no write to the root filesystem was tried",
}

// Judge turns a report into a report card for promises 1 to 5.
func Judge(r Report, e Expect) Card {
	card := Card{Backend: e.Backend, NetworkMode: e.NetworkMode}
	for _, pk := range promiseKinds {
		p := PromiseResult{Promise: pk.promise, Title: Titles[pk.promise]}
		for _, k := range pk.kinds {
			checks := r.Of(k)
			if len(checks) == 0 {
				p.Items = append(p.Items, Item{Check: k, Verdict: Warn, Evidence: "not checked: " + notChecked[k]})
				continue
			}
			for _, c := range checks {
				v, ev := judgeCheck(c, e)
				p.Items = append(p.Items, Item{Check: k, Target: c.Target, Verdict: v, Evidence: oneLine(ev)})
			}
		}
		card.Add(p)
	}
	return card
}

// Add adds a promise's result (the plugin adds its host-side checks and
// promise 6, the cleanup). Items of a promise the card already has join
// it, and its verdict becomes the worst of all; an empty Verdict is
// computed from the items.
func (c *Card) Add(p PromiseResult) {
	if p.Verdict == "" {
		vs := make([]Verdict, 0, len(p.Items))
		for _, it := range p.Items {
			vs = append(vs, it.Verdict)
		}
		p.Verdict = worst(vs...)
	}
	for i := range c.Promises {
		if c.Promises[i].Promise == p.Promise {
			c.Promises[i].Items = append(c.Promises[i].Items, p.Items...)
			c.Promises[i].Verdict = worst(c.Promises[i].Verdict, p.Verdict)
			return
		}
	}
	if p.Title == "" {
		p.Title = Titles[p.Promise]
	}
	c.Promises = append(c.Promises, p)
}

// Failed reports whether any promise failed.
func (c Card) Failed() bool {
	for _, p := range c.Promises {
		if p.Verdict == Fail {
			return true
		}
	}
	return false
}

// Verdict returns the verdict on promise n, "" when the card has none.
func (c Card) Verdict(n int) Verdict {
	for _, p := range c.Promises {
		if p.Promise == n {
			return p.Verdict
		}
	}
	return ""
}

// MarshalJSON writes the card with its overall "failed".
func (c Card) MarshalJSON() ([]byte, error) {
	type plain Card
	return json.Marshal(struct {
		plain
		Failed bool `json:"failed"`
	}{plain(c), c.Failed()})
}

// WriteTable renders the card as a table: each promise, then its checks
// indented below it.
func (c Card) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROMISE\tRESULT\tEVIDENCE")
	for _, p := range c.Promises {
		fmt.Fprintf(tw, "%d. %s\t%s\t\n", p.Promise, p.Title, p.Verdict)
		for _, it := range p.Items {
			name := "   " + string(it.Check)
			if it.Target != "" {
				name += " " + it.Target
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, it.Verdict, it.Evidence)
		}
	}
	return tw.Flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// judgeCheck decides one check.
func judgeCheck(c Check, e Expect) (Verdict, string) {
	ev := c.Evidence
	switch c.Kind {
	case KindAllowed:
		return judgeAllowed(c)
	case KindGitClone:
		if c.Outcome == OutcomeOK {
			s := c.Result
			if ev.Commit != "" {
				s += fmt.Sprintf(" (HEAD %s at %.12s)", ev.Ref, ev.Commit)
			}
			return Pass, s
		}
		return Fail, "the agent cannot get its repository: " + c.Result
	case KindUnlisted:
		return judgeUnlisted(c)
	case KindDirect:
		switch {
		case c.Outcome == OutcomeFailed && ev.Unresolved:
			return Warn, "not proven: the name did not resolve, so no connection was attempted (give an IP address): " + ev.Error
		case c.Outcome == OutcomeFailed:
			return Pass, "no connection without the proxy: " + ev.Error
		case c.Outcome == OutcomeOK:
			return Fail, "connected to " + c.Target + " without the proxy (peer " + ev.RemoteAddr + ")"
		}
		return Warn, "not proven: " + c.Result
	case KindLookup:
		switch c.Outcome {
		case OutcomeOK:
			return Fail, fmt.Sprintf("%s resolved to %s: names resolve inside the bottle, a DNS side channel", c.Target, strings.Join(ev.Addrs, ", "))
		case OutcomeFailed:
			s := c.Result
			if ev.Error != "" && !strings.Contains(s, ev.Error) {
				s += " (" + ev.Error + ")"
			}
			return Pass, s
		}
		return Warn, "not proven: " + c.Result
	case KindLoopback:
		switch {
		case c.Outcome == OutcomeFailed && ev.Unresolved:
			return Warn, "not proven: the name did not resolve, so no connection was attempted (give an IP address): " + ev.Error
		case c.Outcome == OutcomeFailed:
			return Pass, "not reachable: " + ev.Error
		case c.Outcome == OutcomeOK:
			if e.loopbackExposed() {
				return Warn, "reachable: in the smolvm loopback mode the guest reaches every port on the host's loopback " +
					"(documented; each bundle service demands the bottle's token)"
			}
			return Fail, fmt.Sprintf("reachable from the bottle (peer %s): the %s backend in %s mode must not reach host-loopback ports",
				ev.RemoteAddr, e.Backend, e.NetworkMode)
		}
		return Warn, "not proven: " + c.Result
	case KindProxyNoToken:
		switch {
		case c.Outcome == OutcomeRefused && ev.Status == 407:
			return Pass, "407 Proxy Authentication Required without the token"
		case c.Outcome == OutcomeOK:
			return Fail, "the proxy opened a tunnel to " + c.Target + " without any token"
		case c.Outcome == OutcomeRefused:
			return Warn, fmt.Sprintf("refused with %d, not 407: the token requirement was not shown (%s)", ev.Status, ev.Body)
		}
		return Warn, "not proven: " + c.Result
	case KindSecrets:
		switch c.Outcome {
		case OutcomeFound:
			return Fail, "a real secret is inside the bottle: " + strings.Join(ev.Found, ", ")
		case OutcomeClean:
			if ev.Scanned != nil && ev.Scanned.Truncated {
				return Warn, c.Result
			}
			s := c.Result
			if ev.Scanned != nil {
				s = fmt.Sprintf("%d secret(s) not found in %d environment entries and %d files (%d bytes) under %s",
					ev.Scanned.Secrets, ev.Scanned.EnvValues, ev.Scanned.Files, ev.Scanned.Bytes, strings.Join(ev.Scanned.Paths, ", "))
			}
			return Pass, s
		case OutcomeSkipped:
			return Warn, "not checked: " + c.Result
		}
		return Warn, "not proven: " + c.Result
	case KindGitPushBranch:
		if c.Outcome == OutcomeOK {
			return Pass, fmt.Sprintf("the gate accepted commit %.12s on %s", ev.Commit, c.Target)
		}
		return Fail, "the agent cannot deliver its work on its own branch: " + c.Result
	case KindGitPushProtected:
		switch c.Outcome {
		case OutcomeRefused:
			return Pass, c.Result
		case OutcomeOK:
			return Fail, fmt.Sprintf("the gate accepted commit %.12s on %s, which the bottle must not write", ev.Commit, c.Target)
		}
		return Warn, "not proven: " + c.Result
	case KindEvent:
		if c.Outcome == OutcomeOK {
			return Pass, c.Result
		}
		return Fail, "the agent's events do not reach the supervisor: " + c.Result
	case KindOperatorRoute:
		switch {
		case c.Outcome == OutcomeRefused && ev.Status == 403:
			return Pass, c.Result
		case c.Outcome == OutcomeOK:
			return Fail, c.Result + ": the agent could read the audit or decide its own approvals"
		case c.Outcome == OutcomeRefused:
			return Warn, c.Result + ": the agent's token was not recognised, so the role check was not shown"
		}
		return Warn, "not proven: " + c.Result
	case KindNonRoot, KindNoCapabilities, KindNoNewPrivs, KindReadOnlyRoot:
		return judgeHardening(c, e)
	}
	return Warn, "unknown check " + string(c.Kind) + ": " + c.Result
}

// smolvmRoot is why an agent may run as root on smolvm: the reason doctor
// gives for smolvm below its recommended version (smolvm.UserFlagVersion).
const smolvmRoot = "smolvm before 1.14.2 has no --user, so the machine runs its workload and every exec as root, " +
	"not as the image's user (doctor warns: upgrade smolvm); the microVM's kernel is still the boundary"

// judgeHardening decides the agent's own confinement. The docker backend
// promises it all (DESIGN.md: non-root, no capabilities, no-new-privileges,
// a read-only root). On smolvm the microVM is the boundary: the user is
// the image's (root only with an old smolvm, a WARN), capabilities follow
// from the user, and no-new-privileges and a read-only root are not set.
func judgeHardening(c Check, e Expect) (Verdict, string) {
	ev := c.Evidence
	smol := e.Backend == "smolvm"
	if c.Outcome == OutcomeError {
		return Warn, "not proven: " + c.Result
	}
	switch c.Kind {
	case KindNonRoot:
		switch {
		case ev.UID == nil:
			return Warn, "not proven: no uid in the report: " + c.Result
		case *ev.UID != 0:
			return Pass, fmt.Sprintf("the agent runs as uid %d", *ev.UID)
		case smol:
			return Warn, "the agent runs as root (uid 0): " + smolvmRoot
		}
		return Fail, fmt.Sprintf("the agent runs as root (uid 0): the %s backend must run it as a non-root user", e.Backend)
	case KindNoCapabilities:
		capEff, err := strconv.ParseUint(ev.CapEff, 16, 64)
		switch {
		case err != nil:
			return Warn, fmt.Sprintf("not proven: CapEff %q is not hexadecimal", ev.CapEff)
		case capEff == 0:
			return Pass, "CapEff " + ev.CapEff + ": no effective capabilities"
		case smol && ev.UID != nil && *ev.UID == 0:
			return Warn, "CapEff " + ev.CapEff + ": root in the machine holds capabilities: " + smolvmRoot
		}
		return Fail, fmt.Sprintf("CapEff %s: the agent holds capabilities; the %s backend must drop them all", ev.CapEff, e.Backend)
	case KindNoNewPrivs:
		switch {
		case ev.NoNewPrivs == nil:
			return Warn, "not proven: no NoNewPrivs in the report: " + c.Result
		case *ev.NoNewPrivs:
			return Pass, "NoNewPrivs 1: no setuid program can raise the agent's privileges"
		case smol:
			return Pass, "NoNewPrivs 0: not set on the smolvm backend, where the microVM's kernel is the boundary"
		}
		return Fail, "NoNewPrivs 0: a setuid program in the image could raise the agent's privileges; the docker backend must set no-new-privileges"
	case KindReadOnlyRoot:
		switch {
		case c.Outcome == OutcomeFailed && ev.ReadOnly:
			return Pass, "a write to " + c.Target + " failed: " + ev.Error
		case smol:
			return Pass, "the machine's root filesystem is not read-only on the smolvm backend (its disk is the machine's own): " + c.Result
		case c.Outcome == OutcomeOK:
			return Fail, "the root filesystem is writable (" + c.Result + "): the docker backend must make it read-only"
		case c.Outcome == OutcomeFailed:
			return Warn, "not proven: the write failed, but not because the filesystem is read-only: " + ev.Error
		}
		return Warn, "not proven: " + c.Result
	}
	return Warn, "unknown check " + string(c.Kind) + ": " + c.Result
}

func judgeAllowed(c Check) (Verdict, string) {
	ev := c.Evidence
	switch c.Outcome {
	case OutcomeOK:
		s := fmt.Sprintf("%d %s from the target through the proxy in %s", ev.Status, http.StatusText(ev.Status), time.Duration(ev.Elapsed).Round(time.Millisecond))
		if ev.TLSVerified {
			s += fmt.Sprintf("; TLS verified against %s (issuer %q)", strings.Join(ev.CAFiles, ", "), ev.TLSIssuer)
		}
		if ev.Status >= 400 {
			return Warn, "the host is reachable but answered " + s + ": check the URL"
		}
		return Pass, s
	case OutcomeSkipped:
		return Warn, "not checked: " + c.Result
	}
	s := "an allowed host is not reachable: " + c.Result
	if ev.Body != "" {
		s += ": " + ev.Body
	}
	if ev.TLSIssuer != "" {
		s += fmt.Sprintf(" (server certificate issued by %q, CA files %s)", ev.TLSIssuer, strings.Join(ev.CAFiles, ", "))
	}
	return Fail, s
}

func judgeUnlisted(c Check) (Verdict, string) {
	ev := c.Evidence
	host := c.Target
	if u, err := url.Parse(c.Target); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	switch {
	case c.Outcome == OutcomeRefused && ev.Status == 403 && strings.Contains(strings.ToLower(ev.Body), strings.ToLower(host)):
		return Pass, "403 from the proxy: " + firstLine(ev.Body)
	case c.Outcome == OutcomeRefused && ev.Status == 407:
		return Warn, "the proxy did not accept the bottle's token (407), so the allowlist was not tested"
	case c.Outcome == OutcomeRefused:
		return Warn, fmt.Sprintf("refused with %d, but the refusal does not name %s: %s", ev.Status, host, firstLine(ev.Body))
	case c.Outcome == OutcomeOK:
		return Fail, fmt.Sprintf("reached an unlisted host: %s answered %d", host, ev.Status)
	case ev.ConnectStatus == 200:
		return Fail, "the proxy opened a tunnel to an unlisted host (" + c.Result + ")"
	case c.Outcome == OutcomeFailed && ev.ByProxy:
		return Fail, fmt.Sprintf("the proxy let the request through (it failed upstream with %d: %s)", ev.Status, firstLine(ev.Body))
	}
	return Warn, "not reached, but not refused by the proxy either: " + c.Result
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
