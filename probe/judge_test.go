package probe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var (
	smolBridge   = Expect{Backend: "smolvm", NetworkMode: "bridge"}
	smolLoopback = Expect{Backend: "smolvm", NetworkMode: "loopback"}
	dockerInt    = Expect{Backend: "docker", NetworkMode: "internal"}
)

// sealed is a report of a bottle that keeps every promise.
func sealed() Report {
	return Report{Version: ReportVersion, Checks: []Check{
		{Kind: KindAllowed, Target: "https://api.example.com/", Outcome: OutcomeOK, Evidence: Evidence{Status: 200, ConnectStatus: 200, TLSVerified: true}},
		{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeRefused,
			Evidence: Evidence{Status: 403, ByProxy: true, Body: "docker bottle egress proxy: evil.example:443 is not on the egress allowlist of bottle b."}},
		{Kind: KindDirect, Target: "93.184.216.34:443", Outcome: OutcomeFailed, Evidence: Evidence{Error: "connect: connection timed out"}},
		{Kind: KindLookup, Target: "x.example.com", Outcome: OutcomeFailed, Result: "the resolver said the name does not exist", Evidence: Evidence{DNSNotFound: true, Error: "no such host"}},
		{Kind: KindLoopback, Target: "100.96.0.1:22", Outcome: OutcomeFailed, Evidence: Evidence{Error: "connection refused"}},
		{Kind: KindSecrets, Outcome: OutcomeClean, Evidence: Evidence{Scanned: &ScanCounts{Secrets: 1, EnvValues: 20, Files: 9, Bytes: 4000, Paths: []string{"/run/bottle"}}}},
		{Kind: KindGitClone, Target: "http://10.0.0.2:8418/", Outcome: OutcomeOK, Result: "cloned 3 refs"},
		{Kind: KindGitPushBranch, Target: "refs/heads/bottle/b/work", Outcome: OutcomeOK, Evidence: Evidence{Commit: "0123456789abcdef"}},
		{Kind: KindGitPushProtected, Target: "refs/heads/main", Outcome: OutcomeRefused, Result: "the gate refused the push: refs/heads/main is not writable"},
		{Kind: KindEvent, Outcome: OutcomeOK, Result: "accepted"},
		{Kind: KindOperatorRoute, Target: "GET /v1/audit", Outcome: OutcomeRefused, Result: "403", Evidence: Evidence{Status: 403}},
		{Kind: KindProxyNoToken, Target: "api.example.com:443", Outcome: OutcomeRefused, Evidence: Evidence{Status: 407, ByProxy: true}},
		{Kind: KindNonRoot, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(1000)}},
		{Kind: KindNoCapabilities, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(1000), CapEff: "0000000000000000"}},
		{Kind: KindNoNewPrivs, Outcome: OutcomeOK, Evidence: Evidence{NoNewPrivs: ptr(true)}},
		{Kind: KindReadOnlyRoot, Target: "/", Outcome: OutcomeFailed, Evidence: Evidence{ReadOnly: true, Error: "open /.bottle-probe-1: read-only file system"}},
	}}
}

func ptr[T any](v T) *T { return &v }

// with replaces the check of kind k.
func with(r Report, c Check) Report {
	out := r
	out.Checks = nil
	for _, x := range r.Checks {
		if x.Kind == c.Kind {
			x = c
		}
		out.Checks = append(out.Checks, x)
	}
	return out
}

func without(r Report, k Kind) Report {
	out := r
	out.Checks = nil
	for _, x := range r.Checks {
		if x.Kind != k {
			out.Checks = append(out.Checks, x)
		}
	}
	return out
}

func TestJudgeSealedPasses(t *testing.T) {
	for _, e := range []Expect{smolBridge, smolLoopback, dockerInt} {
		card := Judge(sealed(), e)
		if card.Failed() || len(card.Promises) != 5 {
			t.Fatalf("%+v: %+v", e, card)
		}
		for _, p := range card.Promises {
			if p.Verdict != Pass || p.Title != Titles[p.Promise] {
				t.Errorf("%+v: promise %d %s: %+v", e, p.Promise, p.Verdict, p.Items)
			}
		}
	}
}

// TestJudgeEachRule: one changed observation, the verdict it must get, and
// where.
func TestJudgeEachRule(t *testing.T) {
	cases := []struct {
		name    string
		check   Check
		expect  Expect
		promise int
		want    Verdict
		text    string
	}{
		{"allowed refused", Check{Kind: KindAllowed, Outcome: OutcomeRefused, Result: "the proxy refused it", Evidence: Evidence{Status: 403, Body: "not on the allowlist"}},
			smolBridge, 1, Fail, "not on the allowlist"},
		{"allowed TLS not trusted", Check{Kind: KindAllowed, Outcome: OutcomeFailed, Result: "TLS failed", Evidence: Evidence{ConnectStatus: 200, TLSIssuer: "CN=someone", Error: "x509"}},
			smolBridge, 1, Fail, `issued by "CN=someone"`},
		{"allowed answers 404", Check{Kind: KindAllowed, Outcome: OutcomeOK, Evidence: Evidence{Status: 404}}, smolBridge, 1, Warn, "check the URL"},
		{"clone failed", Check{Kind: KindGitClone, Outcome: OutcomeFailed, Result: "authentication required"}, smolBridge, 1, Fail, "authentication required"},
		{"unlisted reached", Check{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeOK, Evidence: Evidence{Status: 200}}, smolBridge, 2, Fail, "reached an unlisted host"},
		{"unlisted tunnel opened", Check{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeFailed, Evidence: Evidence{ConnectStatus: 200}},
			smolBridge, 2, Fail, "opened a tunnel"},
		{"unlisted forwarded, upstream failed", Check{Kind: KindUnlisted, Target: "http://evil.example/", Outcome: OutcomeFailed,
			Evidence: Evidence{Status: 502, ByProxy: true, Body: "docker bottle egress proxy: dial failed"}}, smolBridge, 2, Fail, "let the request through"},
		{"unlisted refusal without the host", Check{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeRefused,
			Evidence: Evidence{Status: 403, Body: "forbidden"}}, smolBridge, 2, Warn, "does not name evil.example"},
		{"unlisted 407", Check{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeRefused, Evidence: Evidence{Status: 407}},
			smolBridge, 2, Warn, "allowlist was not tested"},
		{"unlisted proxy down", Check{Kind: KindUnlisted, Target: "https://evil.example/", Outcome: OutcomeFailed, Result: "could not connect to the proxy"},
			smolBridge, 2, Warn, "not refused by the proxy either"},
		{"direct connects", Check{Kind: KindDirect, Target: "1.2.3.4:443", Outcome: OutcomeOK, Evidence: Evidence{RemoteAddr: "1.2.3.4:443"}}, dockerInt, 2, Fail, "without the proxy"},
		{"direct name unresolved", Check{Kind: KindDirect, Target: "github.com:443", Outcome: OutcomeFailed, Evidence: Evidence{Unresolved: true, Error: "no such host"}},
			dockerInt, 2, Warn, "give an IP address"},
		{"loopback name unresolved", Check{Kind: KindLoopback, Target: "host.docker.internal:22", Outcome: OutcomeFailed, Evidence: Evidence{Unresolved: true}},
			dockerInt, 2, Warn, "not proven"},
		{"lookup answers", Check{Kind: KindLookup, Target: "x.example", Outcome: OutcomeOK, Evidence: Evidence{Addrs: []string{"1.2.3.4"}}}, smolBridge, 2, Fail, "DNS side channel"},
		{"loopback reachable in bridge mode", Check{Kind: KindLoopback, Target: "127.0.0.1:22", Outcome: OutcomeOK}, smolBridge, 2, Fail, "must not reach"},
		{"loopback reachable on docker", Check{Kind: KindLoopback, Target: "127.0.0.1:22", Outcome: OutcomeOK}, dockerInt, 2, Fail, "docker backend"},
		{"loopback reachable in loopback mode", Check{Kind: KindLoopback, Target: "100.96.0.1:22", Outcome: OutcomeOK}, smolLoopback, 2, Warn, "documented"},
		{"proxy open without token", Check{Kind: KindProxyNoToken, Outcome: OutcomeOK}, smolBridge, 2, Fail, "without any token"},
		{"proxy 403 without token", Check{Kind: KindProxyNoToken, Outcome: OutcomeRefused, Evidence: Evidence{Status: 403}}, smolBridge, 2, Warn, "not 407"},
		{"root on docker", Check{Kind: KindNonRoot, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(0)}}, dockerInt, 2, Fail, "runs as root"},
		{"root on smolvm", Check{Kind: KindNonRoot, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(0)}}, smolBridge, 2, Warn, "before 1.14.2"},
		{"uid not read", Check{Kind: KindNonRoot, Outcome: OutcomeError, Result: "no /proc"}, dockerInt, 2, Warn, "not proven"},
		{"capable on docker", Check{Kind: KindNoCapabilities, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(1000), CapEff: "00000000a80425fb"}},
			dockerInt, 2, Fail, "holds capabilities"},
		{"capable root on smolvm", Check{Kind: KindNoCapabilities, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(0), CapEff: "000001ffffffffff"}},
			smolBridge, 2, Warn, "before 1.14.2"},
		{"capable user on smolvm", Check{Kind: KindNoCapabilities, Outcome: OutcomeOK, Evidence: Evidence{UID: ptr(1000), CapEff: "0000000000000400"}},
			smolBridge, 2, Fail, "holds capabilities"},
		{"capabilities garbled", Check{Kind: KindNoCapabilities, Outcome: OutcomeOK, Evidence: Evidence{CapEff: "zz"}}, dockerInt, 2, Warn, "not hexadecimal"},
		{"new privileges on docker", Check{Kind: KindNoNewPrivs, Outcome: OutcomeOK, Evidence: Evidence{NoNewPrivs: ptr(false)}}, dockerInt, 2, Fail, "setuid"},
		{"new privileges on smolvm", Check{Kind: KindNoNewPrivs, Outcome: OutcomeOK, Evidence: Evidence{NoNewPrivs: ptr(false)}}, smolBridge, 2, Pass, "microVM"},
		{"writable root on docker", Check{Kind: KindReadOnlyRoot, Target: "/", Outcome: OutcomeOK, Result: "created /.bottle-probe-1"}, dockerInt, 2, Fail, "writable"},
		{"writable root on smolvm", Check{Kind: KindReadOnlyRoot, Target: "/", Outcome: OutcomeOK, Result: "created /.bottle-probe-1"}, smolLoopback, 2, Pass, "smolvm"},
		{"root write denied", Check{Kind: KindReadOnlyRoot, Target: "/", Outcome: OutcomeFailed, Evidence: Evidence{Error: "permission denied"}},
			dockerInt, 2, Warn, "not because"},
		{"secret found", Check{Kind: KindSecrets, Outcome: OutcomeFound, Evidence: Evidence{Found: []string{"env OPENAI_API_KEY"}}}, smolBridge, 3, Fail, "env OPENAI_API_KEY"},
		{"no secret given", Check{Kind: KindSecrets, Outcome: OutcomeSkipped, Result: "no secret to look for"}, smolBridge, 3, Warn, "not checked"},
		{"branch push refused", Check{Kind: KindGitPushBranch, Outcome: OutcomeRefused, Result: "the gate refused the push"}, smolBridge, 4, Fail, "cannot deliver"},
		{"main push accepted", Check{Kind: KindGitPushProtected, Target: "refs/heads/main", Outcome: OutcomeOK, Evidence: Evidence{Commit: "abc"}}, smolBridge, 4, Fail, "must not write"},
		{"main push not tried", Check{Kind: KindGitPushProtected, Outcome: OutcomeError, Result: "not tried"}, smolBridge, 4, Warn, "not proven"},
		{"event refused", Check{Kind: KindEvent, Outcome: OutcomeRefused, Result: "401"}, smolBridge, 5, Fail, "do not reach the supervisor"},
		{"operator route served", Check{Kind: KindOperatorRoute, Outcome: OutcomeOK, Result: "served"}, smolBridge, 5, Fail, "decide its own approvals"},
		{"operator route 401", Check{Kind: KindOperatorRoute, Outcome: OutcomeRefused, Evidence: Evidence{Status: 401}}, smolBridge, 5, Warn, "not recognised"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			card := Judge(with(sealed(), c.check), c.expect)
			for _, p := range card.Promises {
				want := Pass
				if p.Promise == c.promise {
					want = c.want
				}
				if p.Verdict != want {
					t.Errorf("promise %d is %s, want %s: %+v", p.Promise, p.Verdict, want, p.Items)
				}
				if p.Promise != c.promise {
					continue
				}
				found := false
				for _, it := range p.Items {
					found = found || it.Check == c.check.Kind && it.Verdict == c.want && strings.Contains(it.Evidence, c.text)
				}
				if !found {
					t.Errorf("no %s item with %q: %+v", c.want, c.text, p.Items)
				}
			}
			if card.Failed() != (c.want == Fail) {
				t.Errorf("Failed() = %v", card.Failed())
			}
		})
	}
}

func TestJudgeMissingChecksWarn(t *testing.T) {
	card := Judge(without(sealed(), KindLoopback), dockerInt)
	if card.Verdict(2) != Warn || card.Failed() {
		t.Fatalf("%+v", card.Promises[1])
	}
	found := false
	for _, it := range card.Promises[1].Items {
		found = found || it.Check == KindLoopback && it.Verdict == Warn && strings.Contains(it.Evidence, "--loopback")
	}
	if !found {
		t.Errorf("%+v", card.Promises[1].Items)
	}
	empty := Judge(Report{Version: ReportVersion}, smolBridge)
	for _, p := range empty.Promises {
		if p.Verdict != Warn {
			t.Errorf("an empty report gives promise %d %s", p.Promise, p.Verdict)
		}
	}
}

func TestCardAddRendersAndMarshals(t *testing.T) {
	card := Judge(sealed(), smolLoopback)
	card.Add(PromiseResult{Promise: 6, Items: []Item{
		{Check: "cleanup", Target: "bottle-b", Verdict: Pass, Evidence: "no container, network or machine left"},
		{Check: "cleanup", Target: "stage dir", Verdict: Fail, Evidence: "/home/u/.docker/bottle/bottles/b still exists"},
	}})
	if card.Verdict(6) != Fail || card.Promises[5].Title != Titles[6] || !card.Failed() {
		t.Fatalf("%+v", card.Promises[5])
	}
	var buf bytes.Buffer
	if err := card.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.HasPrefix(lines[0], "PROMISE") || !strings.HasPrefix(lines[1], "1. The agent can do its job at full speed") {
		t.Errorf("table:\n%s", buf.String())
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "cleanup stage dir") || !strings.Contains(last, "FAIL") || !strings.Contains(last, "still exists") {
		t.Errorf("last line %q", last)
	}
	data, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Backend     string `json:"backend"`
		NetworkMode string `json:"network_mode"`
		Failed      bool   `json:"failed"`
		Promises    []struct {
			Promise int     `json:"promise"`
			Verdict Verdict `json:"verdict"`
			Items   []Item  `json:"items"`
		} `json:"promises"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Backend != "smolvm" || back.NetworkMode != "loopback" || !back.Failed || len(back.Promises) != 6 || back.Promises[5].Verdict != Fail {
		t.Errorf("JSON: %s", data)
	}
}

func TestCardAddMergesIntoAPromise(t *testing.T) {
	var c Card
	c.Add(PromiseResult{Promise: 3, Items: []Item{{Check: "secrets", Verdict: Pass}}})
	c.Add(PromiseResult{Promise: 3, Items: []Item{{Check: "secret-on-host", Verdict: Fail}}})
	c.Add(PromiseResult{Promise: 6, Items: []Item{{Check: "cleanup", Verdict: Pass}}})
	if len(c.Promises) != 2 || len(c.Promises[0].Items) != 2 || c.Verdict(3) != Fail || c.Verdict(6) != Pass || !c.Failed() {
		t.Fatalf("card %+v", c)
	}
}
