package spec

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `name: fix-login
backend: smolvm
agent:
  provider: claude
  dockerfile: ./Dockerfile
  build_args:
    NODE: "22"
  prompt: "Fix the login bug"
  env:
    LANG: C.UTF-8
egress:
  allow:
    - host: registry.npmjs.org
    - host: "*.githubusercontent.com"
      ports: [443]
    - host: api.internal.test
      private: true
      methods: [GET]
      paths: ["/v1/*"]
  deny:
    - host: evil.example.com
  secrets:
    - host: api.anthropic.com
      header: x-api-key
      from_env: ANTHROPIC_API_KEY
      placeholder: bottle-placeholder
git:
  push: ["refs/heads/bottle/{name}/*", "refs/heads/agent-*"]
  protected_paths: [".github/workflows/**"]
supervise:
  approvals: [egress, push]
  timeout: 90s
resources:
  cpus: 2
  memory: 4g
`

func TestParseGood(t *testing.T) {
	s, err := Parse("bottle.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "fix-login" || s.Backend != BackendSmolvm || s.Agent.BuildArgs["NODE"] != "22" {
		t.Errorf("decoded %+v", s)
	}
	if len(s.Egress.Allow) != 3 || !s.Egress.Allow[2].Private || s.Egress.Allow[1].Ports[0] != 443 {
		t.Errorf("allow rules %+v", s.Egress.Allow)
	}
	if time.Duration(*s.Supervise.Timeout) != 90*time.Second {
		t.Errorf("timeout %v", *s.Supervise.Timeout)
	}
	if int64(*s.Resources.Memory) != 4<<30 {
		t.Errorf("memory %v", *s.Resources.Memory)
	}
}

func TestParseEmptyFile(t *testing.T) {
	s, err := Parse("bottle.yaml", []byte("  \n"))
	if err != nil || s == nil {
		t.Fatalf("empty file: %v", err)
	}
}

// Each bad spec must fail with exactly this location and a message that
// contains the given text.
func TestParseErrorsAreLocated(t *testing.T) {
	cases := []struct {
		name, yaml, where, text string
	}{
		{"unknown top-level field", "name: a\nbakend: docker\n", "f.yaml:2:1", `unknown field "bakend"`},
		{"unknown nested field", "agent:\n  provider: claude\n  promt: hi\n", "f.yaml:3:3", `unknown field "promt"`},
		{"wrong type", "resources:\n  cpus: many\n", "f.yaml:2:9", "whole number"},
		{"list expected", "git:\n  push: refs/heads/x\n", "f.yaml:2:9", "sequence is expected"},
		{"bad backend", "backend: vm\n", "f.yaml:1:10", "not one of auto, smolvm, docker"},
		{"bad host", "egress:\n  allow:\n    - host: foo..bar\n", "f.yaml:3:13", "not a valid DNS name"},
		{"wildcard too wide", "egress:\n  allow:\n    - host: '*.com'\n", "f.yaml:3:13", "too wide"},
		{"wildcard in middle", "egress:\n  allow:\n    - host: a.*.com\n", "f.yaml:3:13", "first label"},
		{"bad port", "egress:\n  allow:\n    - host: a.test\n      ports: [0]\n", "f.yaml:4:15", "out of range"},
		{"ref not under refs", "git:\n  push:\n    - heads/main\n", "f.yaml:3:7", "must be a full ref name"},
		{"ref with ..", "git:\n  push:\n    - refs/heads/a..b\n", "f.yaml:3:7", "not a valid git ref name"},
		{"literal secret", "egress:\n  secrets:\n    - host: api.x.test\n      header: x-api-key\n      value: sk-123\n",
			"f.yaml:5:14", "never goes in the spec"},
		{"secret without source", "egress:\n  secrets:\n    - host: api.x.test\n      header: x-api-key\n",
			"f.yaml:3:11", "needs a source"},
		{"secret env in agent.env", "agent:\n  env:\n    GITHUB_TOKEN: abc\n", "f.yaml:3:19", "looks like a secret"},
		{"bad duration", "supervise:\n  timeout: soon\n", "f.yaml:2:12", "not a duration"},
		{"bad memory", "resources:\n  memory: lots\n", "f.yaml:2:11", "not a size"},
		{"bad approval", "supervise:\n  approvals: [egress, email]\n", "f.yaml:2:23", "not one of egress, push, tool"},
		{"bad name", "name: Fix_Login\n", "f.yaml:1:7", "bottle name"},
		{"image and dockerfile", "agent:\n  image: x\n  dockerfile: D\n", "f.yaml:2:10", "exclude each other"},
		{"duplicate key", "name: a\nname: b\n", "f.yaml:2:1", "already defined"},
		{"syntax", "agent: [\n", "f.yaml:1:8", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.where+": ") {
				t.Errorf("error %q does not start with %q", msg, c.where)
			}
			if !strings.Contains(msg, c.text) {
				t.Errorf("error %q does not mention %q", msg, c.text)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse("f.yaml", []byte("backend: vm\nnetwork_mode: tcp\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("want 2 located errors, got %v", err)
	}
	if errs[0].Line != 1 || errs[1].Line != 2 {
		t.Errorf("lines %d, %d", errs[0].Line, errs[1].Line)
	}
}

func TestHostPatterns(t *testing.T) {
	for _, h := range []string{"example.com", "*.example.com", "a-b.c0.test", "10.1.2.3", "::1", "localhost"} {
		if err := ValidateHostPattern(h); err != nil {
			t.Errorf("%q refused: %v", h, err)
		}
	}
	for _, h := range []string{"", "*", "*.", "*.com", "ex ample.com", "Example.com", "-a.com", "a.com.", "a_b.com", "**.a.com"} {
		if err := ValidateHostPattern(h); err == nil {
			t.Errorf("%q accepted", h)
		}
	}
}

func TestResolveFillsDefaultsAndKeepsSpecValues(t *testing.T) {
	s, err := Parse("f.yaml", []byte("egress:\n  allow:\n    - host: api.anthropic.com\n      ports: [8443]\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults{
		Command: []string{"claude"},
		Allow:   []Rule{{Host: "api.anthropic.com"}, {Host: "statsig.anthropic.com"}},
		Secrets: []Secret{{Host: "api.anthropic.com", Header: "x-api-key", FromEnv: "ANTHROPIC_API_KEY"}},
		Env:     map[string]string{"DISABLE_AUTOUPDATER": "1"},
	}
	r := s.Resolve(d)
	if r.Backend != BackendAuto || r.NetworkMode != NetworkAuto || r.Agent.Provider != ProviderClaude {
		t.Errorf("enum defaults: %+v", r)
	}
	if len(r.Egress.Allow) != 2 || r.Egress.Allow[0].Ports[0] != 8443 || len(r.Egress.Allow[1].Ports) != 2 {
		t.Errorf("allow: %+v", r.Egress.Allow)
	}
	if r.Egress.Secrets[0].Format != "{value}" || r.Agent.Env["DISABLE_AUTOUPDATER"] != "1" {
		t.Errorf("secrets/env: %+v %v", r.Egress.Secrets, r.Agent.Env)
	}
	if got := r.PushPatterns("x"); len(got) != 1 || got[0] != "refs/heads/bottle/x/*" {
		t.Errorf("push %v", got)
	}
	if len(r.Git.ProtectedPaths.Effective) == 0 || time.Duration(*r.Supervise.Timeout) != DefaultApprovalTimeout {
		t.Errorf("git/supervise defaults: %+v %+v", r.Git, r.Supervise)
	}
	// The receiver is untouched.
	if len(s.Egress.Allow) != 1 || s.Agent.Env != nil {
		t.Errorf("Resolve changed its receiver: %+v", s)
	}
}

func TestApplyValidatesFlags(t *testing.T) {
	var s Spec
	if _, err := s.Apply(Overrides{Backend: "vm"}); err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("bad --backend: %v", err)
	}
	if _, err := s.Apply(Overrides{Env: map[string]string{"OPENAI_API_KEY": "x"}}); err == nil {
		t.Error("a secret-looking -e was accepted")
	}
	r, err := s.Apply(Overrides{Name: "demo", Env: map[string]string{"LANG": "C"}})
	if err != nil || r.Name != "demo" || r.Agent.Env["LANG"] != "C" {
		t.Errorf("Apply: %+v %v", r, err)
	}
}
