package spec

import (
	"slices"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/defaults"
)

// Provider names. The providers themselves (Dockerfile, command, prompt
// mode, default rules) live in package provider, which fills Defaults.
const (
	ProviderClaude = "claude"
	ProviderCodex  = "codex"
	ProviderShell  = "shell"
)

// ProviderNames lists the known agent providers; the first is the default.
func ProviderNames() []string { return []string{ProviderClaude, ProviderCodex, ProviderShell} }

// DefaultApprovalTimeout is how long a held request waits for a human: the
// bundle's own default (package defaults), so the two cannot disagree.
const DefaultApprovalTimeout = defaults.ApprovalTimeout

// DefaultPushPattern lets the agent push only to its own branch prefix.
const DefaultPushPattern = defaults.PushPattern

// Defaults are what an agent provider contributes to a spec.
type Defaults struct {
	Command []string
	Allow   []Rule
	Secrets []Secret
	Env     map[string]string
	// ProtectFiles are files of the repository this run reads and the
	// host acts on (RepoFiles), protected besides protect.Defaults.
	ProtectFiles []string
}

// Overrides are the values flags give; empty fields leave the file's value.
type Overrides struct {
	Name        string
	Backend     string
	NetworkMode string
	Registry    string
	Env         map[string]string
	// NoUserConfig carries none of the user's agent settings
	// (--no-user-config), whatever the file says.
	NoUserConfig bool
	// Ports are published besides the file's (--publish).
	Ports []Port
}

// Apply returns a copy of s with the flags' values over the file's, and
// validates the result again so flags get the same checks as the file.
func (s Spec) Apply(o Overrides) (Spec, error) {
	r := s.clone()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&r.Name, o.Name)
	set(&r.Backend, o.Backend)
	set(&r.NetworkMode, o.NetworkMode)
	set(&r.Registry, o.Registry)
	if o.NoUserConfig {
		r.Agent.UserConfig = UserConfig{Mode: UserConfigNone}
	}
	r.Ports = append(r.Ports, o.Ports...)
	for k, v := range o.Env {
		if r.Agent.Env == nil {
			r.Agent.Env = map[string]string{}
		}
		r.Agent.Env[k] = v
	}
	if ps := r.validate(); len(ps) > 0 {
		errs := make(Errors, len(ps))
		for i, p := range ps {
			errs[i] = &Error{File: "flags", Msg: p.msg}
		}
		return Spec{}, errs
	}
	return r, nil
}

// Resolve returns a copy of s with every default filled in: the provider's
// command, rules, secrets and env (the spec's own entries win), and the
// project's git and supervise defaults, with the effective protected paths.
func (s Spec) Resolve(d Defaults) Spec {
	r := s.clone()
	if r.Backend == "" {
		r.Backend = BackendAuto
	}
	if r.NetworkMode == "" {
		r.NetworkMode = NetworkAuto
	}
	if r.Agent.Provider == "" {
		r.Agent.Provider = ProviderNames()[0]
	}
	if r.Agent.UserConfig.Mode == "" {
		r.Agent.UserConfig = UserConfig{Mode: UserConfigAuto}
	}
	if len(r.Agent.Command) == 0 {
		r.Agent.Command = slices.Clone(d.Command)
	}
	for _, rule := range d.Allow {
		if !slices.ContainsFunc(r.Egress.Allow, func(x Rule) bool { return x.Host == rule.Host }) {
			r.Egress.Allow = append(r.Egress.Allow, rule)
		}
	}
	for _, sec := range d.Secrets {
		if !slices.ContainsFunc(r.Egress.Secrets, func(x Secret) bool {
			return x.Host == sec.Host && strings.EqualFold(x.Header, sec.Header)
		}) {
			r.Egress.Secrets = append(r.Egress.Secrets, sec)
		}
	}
	for k, v := range d.Env {
		if _, ok := r.Agent.Env[k]; !ok {
			if r.Agent.Env == nil {
				r.Agent.Env = map[string]string{}
			}
			r.Agent.Env[k] = v
		}
	}
	for i := range r.Egress.Allow {
		if len(r.Egress.Allow[i].Ports) == 0 {
			r.Egress.Allow[i].Ports = []int{443, 80}
		}
	}
	for i := range r.Egress.Deny {
		if len(r.Egress.Deny[i].Ports) == 0 {
			r.Egress.Deny[i].Ports = []int{443, 80}
		}
	}
	for i := range r.Egress.Secrets {
		if r.Egress.Secrets[i].Format == "" {
			r.Egress.Secrets[i].Format = "{value}"
		}
	}
	if len(r.Git.Push) == 0 {
		r.Git.Push = []string{DefaultPushPattern}
	}
	r.Git.ProtectedPaths = r.Git.ProtectedPaths.resolve(d.ProtectFiles)
	if r.Supervise.Timeout == nil {
		t := Duration(DefaultApprovalTimeout)
		r.Supervise.Timeout = &t
	}
	return r
}

// PushPatterns returns the git push patterns with {name} replaced.
func (s Spec) PushPatterns(name string) []string {
	out := make([]string, len(s.Git.Push))
	for i, p := range s.Git.Push {
		out[i] = strings.ReplaceAll(p, "{name}", name)
	}
	return out
}

// clone copies s deeply enough that Apply and Resolve never share slices or
// maps with their receiver.
func (s Spec) clone() Spec {
	r := s
	r.Agent.Command = slices.Clone(s.Agent.Command)
	r.Agent.BuildArgs = cloneMap(s.Agent.BuildArgs)
	r.Agent.Env = cloneMap(s.Agent.Env)
	r.Agent.UserConfig = s.Agent.UserConfig.clone()
	r.Egress.Allow = cloneRules(s.Egress.Allow)
	r.Egress.Deny = cloneRules(s.Egress.Deny)
	r.Egress.Secrets = slices.Clone(s.Egress.Secrets)
	r.Git.Push = slices.Clone(s.Git.Push)
	r.Git.ProtectedPaths = s.Git.ProtectedPaths.clone()
	r.Supervise.Approvals = slices.Clone(s.Supervise.Approvals)
	r.Supervise.Tools = slices.Clone(s.Supervise.Tools)
	r.Ports = slices.Clone(s.Ports)
	return r
}

func cloneRules(rs []Rule) []Rule {
	if rs == nil {
		return nil
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = r
		out[i].Ports = slices.Clone(r.Ports)
		out[i].Methods = slices.Clone(r.Methods)
		out[i].Paths = slices.Clone(r.Paths)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
