package main

import (
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
)

// The helper reaches the bottle's engine as the plan records it: its
// context, or its host with the TLS files the run was given, whatever
// the shell's environment says.
func TestEngineOfFollowsThePlan(t *testing.T) {
	tls := &plan.EngineTLS{Verify: true, CAFile: "/certs/ca.pem", CertFile: "/certs/cert.pem", KeyFile: "/certs/key.pem"}

	o := engineOf(plan.Plan{Engine: plan.EnginePlan{Context: "default", Host: "tcp://10.203.0.2:2376", TLS: tls}})
	if len(o.Hosts) != 1 || o.Hosts[0] != "tcp://10.203.0.2:2376" || !o.TLS || !o.TLSVerify || o.TLSOptions == nil {
		t.Fatalf("a host with TLS: %+v", o)
	}
	if to := o.TLSOptions; to.CAFile != tls.CAFile || to.CertFile != tls.CertFile || to.KeyFile != tls.KeyFile || to.InsecureSkipVerify {
		t.Errorf("the TLS files: %+v, want %+v", *to, *tls)
	}

	o = engineOf(plan.Plan{Engine: plan.EnginePlan{Context: "default", Host: "tcp://10.203.0.2:2376", TLS: &plan.EngineTLS{CAFile: "/certs/ca.pem"}}})
	if !o.TLS || o.TLSVerify || o.TLSOptions == nil || !o.TLSOptions.InsecureSkipVerify {
		t.Errorf("a host with TLS that is not verified (--tls): %+v %+v", o, o.TLSOptions)
	}

	o = engineOf(plan.Plan{Engine: plan.EnginePlan{Context: "big"}})
	if o.Context != "big" || len(o.Hosts) != 0 || o.TLS {
		t.Errorf("a context: %+v", o)
	}

	o = engineOf(plan.Plan{Engine: plan.EnginePlan{Context: "default", Host: "unix:///var/run/docker.sock"}})
	if len(o.Hosts) != 1 || o.Hosts[0] != "unix:///var/run/docker.sock" || o.TLS || o.TLSOptions != nil {
		t.Errorf("a host without TLS: %+v", o)
	}
}
