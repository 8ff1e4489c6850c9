package hostcheck

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

type namedEngine struct{ name string }

func (e namedEngine) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return client.ServerVersionResult{Version: "20.10.24", APIVersion: "1.41", Os: "linux", Arch: "amd64"}, nil
}

func (e namedEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	return client.SystemInfoResult{Info: system.Info{Name: e.name}}, nil
}

// On a remote context the engine check names the machine it judged: the
// engine's host, not the client's.
func TestEngineCheckNamesTheEnginesHost(t *testing.T) {
	f := plan.Facts{HostOS: "linux", Engine: plan.EngineFacts{Context: "big", Endpoint: "ssh://me@buildbox", Remote: true}}
	describeEngine(context.Background(), namedEngine{name: "buildbox-7"}, &f.Engine)
	if f.Engine.Host != "buildbox-7" {
		t.Fatalf("engine facts name host %q, want buildbox-7", f.Engine.Host)
	}
	for _, c := range Diagnose(f, Extra{}).Checks {
		if c.Name == "engine" {
			if !strings.Contains(c.Detail, `on host "buildbox-7"`) || !strings.Contains(c.Detail, `context "big"`) {
				t.Errorf("engine check: %q", c.Detail)
			}
			return
		}
	}
	t.Fatal("no engine check")
}

// On a remote context doctor says whether git finds git-remote-bottle,
// without which the user cannot fetch the agent's work; on a local one
// the stage's repository is fetched directly and the row is not shown.
func TestDoctorRowForTheGitRemoteHelper(t *testing.T) {
	row := func(remote bool, x Extra) *Check {
		f := plan.Facts{HostOS: "linux", Engine: plan.EngineFacts{Reachable: true, Endpoint: "ssh://me@box", Remote: remote}}
		for _, c := range Diagnose(f, x).Checks {
			if c.Name == "git remote helper" {
				return &c
			}
		}
		return nil
	}
	if c := row(true, Extra{GitHelperErr: errors.New("not found")}); c == nil || c.Status != Fail || !strings.Contains(c.Remedy, "make install") {
		t.Errorf("remote engine without the helper: %+v, want a failed row with the remedy", c)
	}
	if c := row(true, Extra{GitHelper: "/usr/local/bin/git-remote-bottle"}); c == nil || c.Status != OK || !strings.Contains(c.Detail, "/usr/local/bin/git-remote-bottle") {
		t.Errorf("remote engine with the helper: %+v, want an ok row naming it", c)
	}
	if c := row(false, Extra{GitHelperErr: errors.New("not found")}); c != nil {
		t.Errorf("local engine: %+v, want no row", c)
	}
}
