package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/probe"
	"github.com/docker-bottle/docker-bottle/probe/agent"
	"github.com/docker-bottle/docker-bottle/probe/internal/probetest"
)

// TestProbeSealedBottle runs the probe binary against a bundle that keeps
// every promise: each observation is what the bundle really did, and the
// judge passes promises 1 to 5 in every backend and network mode.
func TestProbeSealedBottle(t *testing.T) {
	bin := probetest.Binary(t)
	b := newBottle(t, leaks{})
	r := b.run(bin, leaks{})

	if r.Version != probe.ReportVersion || r.Bottle != slug || r.Branch != "bottle/"+slug+"/work" {
		t.Errorf("report header: version %d bottle %q branch %q", r.Version, r.Bottle, r.Branch)
	}
	for _, n := range r.EnvNames {
		if strings.Contains(n, "=") {
			t.Errorf("env_names holds a value: %q", n)
		}
	}

	// 1. The allowed host, over https (intercepted: the leaf is minted from
	// the bottle CA, and the upstream answered only because the proxy added
	// the secret) and over http.
	c := one(t, r, probe.KindAllowed, b.allowedTLS)
	if c.Outcome != probe.OutcomeOK || c.Evidence.Status != 200 || c.Evidence.ConnectStatus != 200 || !c.Evidence.TLSVerified ||
		c.Evidence.TLSIssuer != b.bottleCA.Certificate().Subject.String() || !strings.Contains(c.Evidence.Body, "hello from the allowed upstream") {
		t.Errorf("allowed https: %+v", c)
	}
	if want := []string{b.caBundle, b.caFile}; strings.Join(c.Evidence.CAFiles, " ") != strings.Join(want, " ") {
		t.Errorf("allowed https verified against %v, want %v ($SSL_CERT_FILE, $NODE_EXTRA_CA_CERTS, once each)", c.Evidence.CAFiles, want)
	}
	c = one(t, r, probe.KindAllowed, b.allowedHTTP)
	if c.Outcome != probe.OutcomeOK || c.Evidence.Status != 200 || c.Evidence.ByProxy || !strings.Contains(c.Evidence.Body, "hello") {
		t.Errorf("allowed http: %+v", c)
	}

	// 2. The unlisted host is refused by name, and never reached.
	c = one(t, r, probe.KindUnlisted, b.unlisted)
	if c.Outcome != probe.OutcomeRefused || c.Evidence.Status != 403 || !c.Evidence.ByProxy ||
		!strings.Contains(c.Evidence.Body, unlistedHost) || !strings.Contains(c.Evidence.Body, "allowlist") {
		t.Errorf("unlisted: %+v", c)
	}
	if n := b.unlistedHits.Load(); n != 0 {
		t.Errorf("the unlisted upstream was reached %d times", n)
	}
	c = one(t, r, probe.KindDirect, b.direct)
	if c.Outcome != probe.OutcomeFailed || !strings.Contains(c.Evidence.Error, "refused") || !strings.Contains(c.Result, "refused") {
		t.Errorf("direct: %+v", c)
	}
	lookups := r.Of(probe.KindLookup)
	if len(lookups) != 2 || lookups[0].Target != "api.github.com" || !strings.HasPrefix(lookups[1].Target, "bottle-probe-") ||
		!strings.HasSuffix(lookups[1].Target, ".probe.test") {
		t.Fatalf("lookups: %+v", lookups)
	}
	for _, c := range lookups {
		if c.Outcome != probe.OutcomeFailed || len(c.Evidence.Addrs) != 0 || c.Evidence.DNSServer != b.dns || c.Evidence.Error == "" {
			t.Errorf("lookup: %+v", c)
		}
	}
	if c = one(t, r, probe.KindLoopback, b.loopback); c.Outcome != probe.OutcomeFailed {
		t.Errorf("loopback: %+v", c)
	}
	if c = one(t, r, probe.KindProxyNoToken, ""); c.Outcome != probe.OutcomeRefused || c.Evidence.Status != 407 ||
		!strings.HasPrefix(c.Target, allowedHost+":") {
		t.Errorf("proxy without token: %+v", c)
	}

	// 3. The secret is nowhere the bottle can see, though the search read
	// the bottle's files.
	c = one(t, r, probe.KindSecrets, "")
	if c.Outcome != probe.OutcomeClean || len(c.Evidence.Found) != 0 || c.Evidence.Scanned == nil {
		t.Fatalf("secrets: %+v", c)
	}
	if s := c.Evidence.Scanned; s.Secrets != 1 || s.Files < 5 || s.EnvValues < 10 || s.Truncated {
		t.Errorf("secret search counts: %+v", s)
	}
	for _, p := range []string{b.runDir, b.home, b.workspace, "/run/bottle", "/etc/docker-bottle"} {
		if !slices.Contains(c.Evidence.Scanned.Paths, p) {
			t.Errorf("the secret search did not cover %s: %v", p, c.Evidence.Scanned.Paths)
		}
	}

	// 4. The clone, the accepted push (really in the gate's repository), the
	// refused push (main unchanged).
	mainBefore := git(t, b.gateRepo, "rev-parse", "refs/heads/main")
	c = one(t, r, probe.KindGitClone, "")
	if c.Outcome != probe.OutcomeOK || c.Evidence.Refs < 1 || c.Evidence.Commit != mainBefore {
		t.Errorf("clone: %+v (main is %s)", c, mainBefore)
	}
	c = one(t, r, probe.KindGitPushBranch, "")
	if c.Outcome != probe.OutcomeOK || c.Target != "refs/heads/bottle/"+slug+"/work" {
		t.Errorf("push to the branch: %+v", c)
	}
	if got := git(t, b.gateRepo, "rev-parse", c.Target); got != c.Evidence.Commit {
		t.Errorf("the gate's %s is %s, the probe pushed %s", c.Target, got, c.Evidence.Commit)
	}
	if parent := git(t, b.gateRepo, "rev-parse", c.Target+"^"); parent != mainBefore {
		t.Errorf("the probe's commit has parent %s, want main %s", parent, mainBefore)
	}
	if files := git(t, b.gateRepo, "ls-tree", "--name-only", c.Target); !strings.Contains(files, ".bottle-probe") || !strings.Contains(files, "src") {
		t.Errorf("the probe's commit holds %q", files)
	}
	git(t, b.gateRepo, "fsck", "--strict", "--no-progress")
	c = one(t, r, probe.KindGitPushProtected, "")
	if c.Outcome != probe.OutcomeRefused || !strings.Contains(c.Result, "not writable from this bottle") {
		t.Errorf("push to main: %+v", c)
	}
	if got := git(t, b.gateRepo, "rev-parse", "refs/heads/main"); got != mainBefore {
		t.Errorf("main moved from %s to %s", mainBefore, got)
	}

	// 5. The event arrived, from the agent; the operator routes refused.
	c = one(t, r, probe.KindEvent, "")
	if c.Outcome != probe.OutcomeOK {
		t.Errorf("event: %+v", c)
	}
	op, err := client.New(b.superviseAddr, b.opToken)
	must(t, err)
	evs, err := op.Events(context.Background(), 0)
	must(t, err)
	if len(evs) != 1 || evs[0].Type != "probe.check" || evs[0].Source != "agent" {
		t.Errorf("supervisor events: %+v", evs)
	}
	ops := r.Of(probe.KindOperatorRoute)
	if len(ops) != 3 {
		t.Fatalf("operator routes: %+v", ops)
	}
	for _, c := range ops {
		if c.Outcome != probe.OutcomeRefused || c.Evidence.Status != 403 {
			t.Errorf("operator route: %+v", c)
		}
	}

	for _, e := range []probe.Expect{{Backend: "smolvm", NetworkMode: "bridge"}, {Backend: "smolvm", NetworkMode: "loopback"},
		{Backend: "docker", NetworkMode: "internal"}} {
		card := probe.Judge(r, e)
		for n := 1; n <= 5; n++ {
			if v := card.Verdict(n); v != probe.Pass {
				var buf bytes.Buffer
				card.WriteTable(&buf)
				t.Errorf("%+v: promise %d is %s\n%s", e, n, v, buf.String())
			}
		}
		if card.Failed() {
			t.Errorf("%+v: the card failed", e)
		}
	}
	var buf bytes.Buffer
	card := probe.Judge(r, probe.Expect{Backend: "docker", NetworkMode: "internal"})
	must(t, card.WriteTable(&buf))
	t.Logf("report card:\n%s", buf.String())
	if strings.Contains(buf.String(), b.secret) || strings.Contains(buf.String(), strings.TrimSpace(readToken(t, b.tokenFile))) {
		t.Error("the report card holds the secret or the token")
	}
}

// TestProbeLeakyBottle gives the bottle one hole per promise: the judge must
// fail each of promises 2 to 5 on the right check, and still pass 1.
func TestProbeLeakyBottle(t *testing.T) {
	bin := probetest.Binary(t)
	l := leaks{unlistedAllowed: true, mainWritable: true, operatorToken: true, dnsAnswers: true,
		secretInEnv: true, secretInFile: true, reachable: true}
	b := newBottle(t, l)
	mainBefore := git(t, b.gateRepo, "rev-parse", "refs/heads/main")
	r := b.run(bin, l)

	if c := one(t, r, probe.KindUnlisted, ""); c.Outcome != probe.OutcomeOK || c.Evidence.Status != 200 || c.Evidence.ByProxy ||
		!strings.Contains(c.Evidence.Body, "unlisted upstream was reached") || b.unlistedHits.Load() != 1 {
		t.Errorf("unlisted, allowed by mistake: %+v (hits %d)", c, b.unlistedHits.Load())
	}
	if c := one(t, r, probe.KindDirect, ""); c.Outcome != probe.OutcomeOK || c.Evidence.RemoteAddr != b.direct {
		t.Errorf("direct to a listening address: %+v", c)
	}
	for _, c := range r.Of(probe.KindLookup) {
		if c.Outcome != probe.OutcomeOK || len(c.Evidence.Addrs) != 1 || c.Evidence.Addrs[0] != "192.0.2.7" {
			t.Errorf("lookup with an answering resolver: %+v", c)
		}
	}
	if c := one(t, r, probe.KindLoopback, ""); c.Outcome != probe.OutcomeOK {
		t.Errorf("loopback to a listening port: %+v", c)
	}
	c := one(t, r, probe.KindSecrets, "")
	if c.Outcome != probe.OutcomeFound || len(c.Evidence.Found) < 3 {
		t.Fatalf("secrets: %+v", c)
	}
	found := strings.Join(c.Evidence.Found, "\n")
	for _, want := range []string{"env LEAKED_KEY", "/proc/self/environ", "file " + b.runDir + "/credentials (at byte 20)"} {
		if !strings.Contains(found, want) {
			t.Errorf("the secret was not reported in %q; found:\n%s", want, found)
		}
	}
	if strings.Contains(found, b.secret) {
		t.Error("the report holds the secret itself")
	}
	c = one(t, r, probe.KindGitPushProtected, "")
	if c.Outcome != probe.OutcomeOK {
		t.Errorf("push to main with a gate that allows it: %+v", c)
	}
	if got := git(t, b.gateRepo, "rev-parse", "refs/heads/main"); got != c.Evidence.Commit || got == mainBefore {
		t.Errorf("main is %s, the probe pushed %s (before %s)", got, c.Evidence.Commit, mainBefore)
	}
	for _, c := range r.Of(probe.KindOperatorRoute) {
		if c.Outcome != probe.OutcomeOK {
			t.Errorf("operator route with the operator's token: %+v", c)
		}
	}

	for _, e := range []probe.Expect{{Backend: "docker", NetworkMode: "internal"}, {Backend: "smolvm", NetworkMode: "loopback"}} {
		card := probe.Judge(r, e)
		var buf bytes.Buffer
		must(t, card.WriteTable(&buf))
		t.Logf("%+v:\n%s", e, buf.String())
		want := map[int]probe.Verdict{1: probe.Pass, 2: probe.Fail, 3: probe.Fail, 4: probe.Fail, 5: probe.Fail}
		for n, v := range want {
			if got := card.Verdict(n); got != v {
				t.Errorf("%+v: promise %d is %s, want %s", e, n, got, v)
			}
		}
		if !card.Failed() {
			t.Errorf("%+v: the card did not fail", e)
		}
		for _, k := range []probe.Kind{probe.KindUnlisted, probe.KindDirect, probe.KindLookup} {
			if it := item(t, card, 2, k, ""); it.Verdict != probe.Fail {
				t.Errorf("%+v: %s is %s: %s", e, k, it.Verdict, it.Evidence)
			}
		}
		if it := item(t, card, 3, probe.KindSecrets, ""); it.Verdict != probe.Fail || !strings.Contains(it.Evidence, "LEAKED_KEY") {
			t.Errorf("secrets item: %+v", it)
		}
		if it := item(t, card, 4, probe.KindGitPushProtected, ""); it.Verdict != probe.Fail {
			t.Errorf("push to main item: %+v", it)
		}
		if it := item(t, card, 4, probe.KindGitPushBranch, ""); it.Verdict != probe.Pass {
			t.Errorf("push to the branch item: %+v", it)
		}
		for _, it := range card.Promises[4].Items {
			if it.Check == probe.KindOperatorRoute && it.Verdict != probe.Fail {
				t.Errorf("operator route item: %+v", it)
			}
		}
		// A reachable host-loopback port is the documented exposure of the
		// smolvm loopback mode, and a failure anywhere else.
		wantLoop := probe.Fail
		if e.NetworkMode == "loopback" {
			wantLoop = probe.Warn
		}
		if it := item(t, card, 2, probe.KindLoopback, ""); it.Verdict != wantLoop {
			t.Errorf("%+v: loopback item %+v, want %s", e, it, wantLoop)
		}
		js, err := json.Marshal(card)
		must(t, err)
		if !strings.Contains(string(js), `"failed":true`) || strings.Contains(string(js), b.secret) {
			t.Errorf("card JSON: %s", js)
		}
	}
}

// TestProbeBadInput: bad flags are refused with a clear message and a
// non-zero exit, before anything is tried.
func TestProbeBadInput(t *testing.T) {
	bin := probetest.Binary(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--allowed", "ftp://x/"}, "want http:// or https://"},
		{[]string{"--direct", "nohostport"}, "want HOST:PORT"},
		{[]string{"--secret-sha256", "abcd", "--secret-len", "8"}, "not 64 hex digits"},
		{[]string{"--secret-sha256", strings.Repeat("ab", 32)}, "give one length for each hash"},
		{[]string{"--config", "/nonexistent/probe.json"}, "reading the probe config"},
		{[]string{"--timeout", "soon"}, "want a duration"},
		{[]string{"stray"}, "unexpected argument"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, append([]string{"probe"}, c.args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil || !strings.Contains(stderr.String(), c.want) || stdout.Len() != 0 {
			t.Errorf("%v: err %v, stdout %q, stderr %q, want %q", c.args, err, stdout.String(), stderr.String(), c.want)
		}
	}
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

// TestProbeShallowClone: with --git-depth 1 the probe pushes from a shallow
// clone, which the gate must take like any other push.
func TestProbeShallowClone(t *testing.T) {
	bin := probetest.Binary(t)
	b := newBottle(t, leaks{})
	r := b.run(bin, leaks{}, "--git-depth", "1", "--direct", "nosuch.probe.test:443")
	for _, k := range []probe.Kind{probe.KindGitClone, probe.KindGitPushBranch} {
		if c := one(t, r, k, ""); c.Outcome != probe.OutcomeOK {
			t.Errorf("%s: %+v", k, c)
		}
	}
	c := one(t, r, probe.KindGitPushBranch, "")
	if got := git(t, b.gateRepo, "rev-parse", c.Target); got != c.Evidence.Commit {
		t.Errorf("the gate's branch is %s, the probe pushed %s", got, c.Evidence.Commit)
	}
	git(t, b.gateRepo, "fsck", "--strict", "--no-progress")
	if c := one(t, r, probe.KindGitPushProtected, ""); c.Outcome != probe.OutcomeRefused {
		t.Errorf("push to main: %+v", c)
	}

	// A direct target whose name does not resolve proves nothing: the
	// judge says so rather than passing it.
	c = one(t, r, probe.KindDirect, "nosuch.probe.test:443")
	if c.Outcome != probe.OutcomeFailed || !c.Evidence.Unresolved {
		t.Errorf("unresolvable direct target: %+v", c)
	}
	card := probe.Judge(r, probe.Expect{Backend: "smolvm", NetworkMode: "bridge"})
	if it := item(t, card, 2, probe.KindDirect, "nosuch.probe.test:443"); it.Verdict != probe.Warn {
		t.Errorf("unresolvable direct target judged %+v", it)
	}
	if it := item(t, card, 2, probe.KindDirect, b.direct); it.Verdict != probe.Pass {
		t.Errorf("closed direct target judged %+v", it)
	}
}

// TestRunInProcess runs the checks in the test process (so that the race
// detector sees their goroutines) against a sealed bottle: same verdicts as
// the binary.
func TestRunInProcess(t *testing.T) {
	b := newBottle(t, leaks{})
	sum, n := b.secretHash()
	env := b.env(leaks{})
	cfg := probe.Config{
		Allowed: []string{b.allowedTLS, b.allowedHTTP}, Unlisted: []string{b.unlisted},
		Direct: []string{b.direct}, Loopback: []string{b.loopback}, Lookup: []string{"api.github.com"},
		LookupDomain: "probe.test", Resolver: b.dns, Secrets: []probe.SecretHash{{SHA256: sum, Len: n}},
		Scan: []string{b.runDir}, Workspace: b.workspace, Root: b.dir,
	}.WithEnv(func(k string) string {
		for _, kv := range env {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	})
	r := agent.Run(context.Background(), cfg, env)
	if len(r.Checks) != 20 {
		t.Errorf("%d checks: %+v", len(r.Checks), r.Checks)
	}
	for i := 1; i < len(r.Checks); i++ {
		if slices.Index(probe.Kinds, r.Checks[i-1].Kind) > slices.Index(probe.Kinds, r.Checks[i].Kind) {
			t.Errorf("checks out of order: %s before %s", r.Checks[i-1].Kind, r.Checks[i].Kind)
		}
	}
	card := probe.Judge(outsideABottle(t, r, b.dir), probe.Expect{Backend: "smolvm", NetworkMode: "bridge"})
	if card.Failed() {
		var buf bytes.Buffer
		card.WriteTable(&buf)
		t.Errorf("the card failed:\n%s", buf.String())
	}
	for n := 1; n <= 5; n++ {
		if v := card.Verdict(n); v != probe.Pass {
			t.Errorf("promise %d is %s", n, v)
		}
	}
}
