package hostcheck

import (
	"fmt"
	"strings"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/stage"
)

// Status of one check.
type Status string

// The statuses, from fine to failed.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one line of doctor's report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Remedy string `json:"remedy,omitempty"`
}

// Extra are the facts doctor checks beyond those Choose uses.
type Extra struct {
	BuildxPath string
	BuildxErr  error
	Dirs       stage.Dirs
	StateErr   error
	CacheErr   error
	// GitHelper is where git finds git-remote-bottle, which fetches a
	// bottle's branches through the engine API (the remote the plugin
	// registers on a remote engine); GitHelperErr why it does not.
	GitHelper    string
	GitHelperErr error
}

// Report is doctor's whole answer.
type Report struct {
	Checks []Check      `json:"checks"`
	Choice *plan.Choice `json:"choice,omitempty"`
	CanRun bool         `json:"can_run"`
	Reason string       `json:"reason,omitempty"`
	Facts  plan.Facts   `json:"facts"`
}

// Diagnose turns facts into checks and decides whether the auto backend
// can run.
func Diagnose(f plan.Facts, x Extra) Report {
	var cs []Check
	e := f.Engine
	switch {
	case !e.Reachable:
		cs = append(cs, Check{"engine", Fail, fmt.Sprintf("context %q (%s): %s", e.Context, e.Endpoint, e.Error),
			"start Docker, or select a context that answers with `docker context use`"})
	default:
		kind := []string{}
		if e.Desktop {
			kind = append(kind, "Docker Desktop")
		}
		if e.Rootless {
			kind = append(kind, "rootless")
		}
		if e.Remote {
			kind = append(kind, "remote")
		}
		if len(kind) == 0 {
			kind = append(kind, "local rootful")
		}
		host := ""
		if e.Host != "" {
			host = fmt.Sprintf(" on host %q", e.Host)
		}
		c := Check{"engine", OK, fmt.Sprintf("context %q (%s): engine %s, API %s, %s/%s%s, %s",
			e.Context, e.Endpoint, e.Version, e.APIVersion, e.OS, e.Arch, host, strings.Join(kind, ", ")), ""}
		cs = append(cs, c)
	}

	if e.Remote {
		if x.GitHelperErr != nil {
			cs = append(cs, Check{"git remote helper", Fail, "git finds no git-remote-bottle on PATH or in its exec-path, " +
				"so `git fetch bottle-NAME` and `docker bottle diff` cannot reach a bottle on this engine",
				"`make install` puts git-remote-bottle next to the plugin; put that dir on PATH"})
		} else {
			cs = append(cs, Check{"git remote helper", OK, x.GitHelper + ": `git fetch bottle-NAME` reaches the gate through the engine", ""})
		}
	}

	if x.BuildxErr != nil {
		cs = append(cs, Check{"buildx", Warn, "not installed: agent images are built with the engine's classic builder",
			"install the docker buildx plugin for BuildKit builds (RUN --mount, secrets, cache)"})
	} else {
		cs = append(cs, Check{"buildx", OK, x.BuildxPath, ""})
	}

	s := f.Smolvm
	recommended := smolvm.RecommendedVersion.String()
	switch {
	case !s.Found:
		cs = append(cs, Check{"smolvm", Warn, "not found (set DOCKER_BOTTLE_SMOLVM or put smolvm on PATH)",
			"install smolvm " + recommended + " or later for the microVM backend; without it bottles use the docker backend"})
	case s.Error != "":
		cs = append(cs, Check{"smolvm", Fail, s.Path + ": " + s.Error, "install smolvm " + recommended + " or later, or use --backend docker"})
	case s.Warning != "":
		cs = append(cs, Check{"smolvm", Warn, s.Path + ": smolvm " + s.Version + ": " + s.Warning, ""})
	default:
		cs = append(cs, Check{"smolvm", OK, s.Path + ": smolvm " + s.Version, ""})
	}

	hv := Check{"hypervisor", OK, f.Hypervisor.Detail, ""}
	if !f.Hypervisor.Usable {
		hv.Status, hv.Remedy = Warn, "the smolvm backend needs it; the docker backend does not"
	}
	cs = append(cs, hv)
	if f.Hypervisor.BootChecked {
		boot := Check{"microvm boot", OK, f.Hypervisor.BootDetail, ""}
		if !f.Hypervisor.Boots {
			boot.Status, boot.Remedy = Warn, "the smolvm backend needs a microVM that boots; bottles use the docker backend here"
		}
		cs = append(cs, boot)
	}

	for _, d := range []struct {
		name, dir string
		err       error
	}{{"state dir", x.Dirs.State, x.StateErr}, {"cache dir", x.Dirs.Cache, x.CacheErr}} {
		if d.err != nil {
			cs = append(cs, Check{d.name, Fail, fmt.Sprintf("%s: %v", d.dir, d.err), "make it writable, or point DOCKER_CONFIG / DOCKER_BOTTLE_CACHE elsewhere"})
		} else {
			cs = append(cs, Check{d.name, OK, d.dir + " is writable", ""})
		}
	}

	r := Report{Checks: cs, Facts: f}
	choice, err := plan.Choose(f, "auto", "auto")
	if err != nil {
		r.Reason = err.Error()
		cs = append(cs, Check{"backend", Fail, err.Error(), ""})
	} else {
		r.Choice = &choice
		detail := "auto uses " + choice.Backend
		if choice.NetworkMode != "" {
			detail += " (network mode " + choice.NetworkMode + ")"
		}
		cs = append(cs, Check{"backend", OK, detail + ": " + choice.Why, ""})
	}
	r.CanRun = err == nil && x.StateErr == nil && x.CacheErr == nil
	if err == nil && !r.CanRun {
		r.Reason = "the state or cache dir is not writable"
	}
	r.Checks = cs
	return r
}
