// Package plan resolves everything a bottle needs before anything starts:
// its name, subnet, backend and network mode, and the endpoints and
// environment the agent will see. Plans are values: bring-up completes one
// by returning a new plan. Package stage claims the name, writes the files
// the plan names and keeps the plan on disk.
package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/spec"
)

// Container ports of the bundle's daemons.
const (
	ProxyPort     = 3128
	GatePort      = 8418
	SupervisePort = 8419
)

// SmolvmGateway is the host gateway as a virtio-net guest sees it; it maps
// to the host's 127.0.0.1 (smolvm-cli.md, section 3).
const SmolvmGateway = "100.96.0.1"

// Paths inside the bottle.
const (
	GuestDir        = "/run/bottle"
	GuestPromptFile = GuestDir + "/prompt"
	GuestTokenFile  = GuestDir + "/token"
	GuestCAFile     = GuestDir + "/ca.pem"
	// GuestUserConfig is the snapshot of the user's agent settings, which
	// the workspace bootstrap copies into the agent's home at first start.
	GuestUserConfig = GuestDir + "/user-config.tar"
	// GuestCABundle is the system roots plus the bottle CA, written by the
	// bottle layer, for tools that take one bundle file.
	GuestCABundle = "/etc/docker-bottle/ca-bundle.pem"
	// GuestWorkspace is where the workspace bootstrap clones the
	// repository, on the bottle's own disk.
	GuestWorkspace = "/workspace"
)

// Plan is everything resolved for one bottle. Backend-specific parts are in
// Smolvm or Docker, exactly one of which is set.
type Plan struct {
	Spec        spec.Spec `json:"spec"`
	Slug        string    `json:"slug"`
	Created     time.Time `json:"created"`
	Workspace   string    `json:"workspace"`
	StageDir    string    `json:"stage_dir"`
	Backend     string    `json:"backend"`
	NetworkMode string    `json:"network_mode"`
	Why         string    `json:"why"`
	PromptFile  string    `json:"prompt_file"`
	// Tokens are files in the stage dir; values never appear in a plan.
	AgentTokenFile    string `json:"agent_token_file"`
	OperatorTokenFile string `json:"operator_token_file"`

	Bundle    BundlePlan     `json:"bundle"`
	GitGate   GitGatePlan    `json:"git_gate_plan"`
	Egress    EgressPlan     `json:"egress_plan"`
	Supervise SupervisePlan  `json:"supervise_plan"`
	Agent     AgentProvision `json:"agent_provision"`

	// Endpoints are known once the bundle is up (bridge mode and the
	// docker backend know them at once: they need no published port).
	Endpoints *Endpoints `json:"endpoints,omitempty"`

	Smolvm *SmolvmPlan `json:"smolvm,omitempty"`
	Docker *DockerPlan `json:"docker,omitempty"`

	// Engine is the docker engine the bottle was made on, so that what
	// runs outside the plugin (git-remote-bottle, run by git in the
	// user's shell, whose current context may be another) reaches the
	// bottle's engine.
	Engine EnginePlan `json:"engine,omitzero"`

	// AgentCreated is set once the agent's container or machine exists, so
	// removal knows whether it needs the backend.
	AgentCreated bool `json:"agent_created,omitempty"`
}

// EnginePlan names the docker engine of a bottle as the docker CLI was
// told it: a context, or for the default context (-H, DOCKER_HOST) its
// host, with the TLS files it was given for that host.
type EnginePlan struct {
	Context string `json:"context,omitempty"`
	Host    string `json:"host,omitempty"`
	// TLS is how the docker CLI reached Host with TLS (--tls, --tlsverify
	// and the files of --tlscacert, --tlscert and --tlskey, or of
	// DOCKER_CERT_PATH); nil without TLS, and for a context, which keeps
	// its own TLS material.
	TLS *EngineTLS `json:"tls,omitempty"`
}

// EngineTLS names the TLS files of an engine's host by their absolute
// paths, never their contents: the client's key stays where its user
// keeps it, and only the client reads it.
type EngineTLS struct {
	// Verify checks the engine's certificate against CAFile (--tlsverify).
	Verify   bool   `json:"verify,omitempty"`
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// BundlePlan places the bundle container.
type BundlePlan struct {
	Container string       `json:"container"`
	Network   string       `json:"network"`
	Subnet    netip.Prefix `json:"bundle_subnet"`
	Gateway   netip.Addr   `json:"bundle_gateway"`
	IP        netip.Addr   `json:"bundle_ip"`
	// Reserved is the /24 reserved for the bottle (the docker backend
	// splits it into the bundle and internal networks).
	Reserved netip.Prefix `json:"reserved_subnet"`
	// The docker backend's internal network, shared with the agent.
	InternalNetwork string       `json:"internal_network,omitempty"`
	InternalSubnet  netip.Prefix `json:"internal_subnet,omitzero"`
	InternalIP      netip.Addr   `json:"internal_ip,omitzero"`
	// StageOnEngine: the bottle goes through the engine (ThroughEngine):
	// what the bundle and the agent read lives in volumes on the engine,
	// filled through the engine API, instead of bind mounts of the stage
	// dir, which an engine on another host cannot see.
	StageOnEngine bool `json:"stage_on_engine,omitempty"`
}

// GitGatePlan is the gate's repository and rules.
type GitGatePlan struct {
	Source         string   `json:"source"`
	Repo           string   `json:"repo"`
	Branch         string   `json:"branch"`
	Remote         string   `json:"remote"`
	Push           []string `json:"push"`
	AllowForce     bool     `json:"allow_force"`
	AllowDelete    bool     `json:"allow_delete"`
	AllowTags      bool     `json:"allow_tags"`
	ProtectedPaths []string `json:"protected_paths"`
	// StartRef and StartCommit are the user's branch and its commit when
	// the gate's repository was made: the gate checks protected paths
	// against them (see WithStart).
	StartRef    string `json:"start_ref,omitempty"`
	StartCommit string `json:"start_commit,omitempty"`
}

// EgressPlan is the proxy's rules. Secrets name their host-side source;
// values are read only when the bundle starts.
type EgressPlan struct {
	Allow   []spec.Rule   `json:"allow"`
	Deny    []spec.Rule   `json:"deny,omitempty"`
	Secrets []spec.Secret `json:"secrets,omitempty"`
}

// SupervisePlan is the supervisor's approval policy.
type SupervisePlan struct {
	Approvals []string      `json:"approvals,omitempty"`
	Timeout   time.Duration `json:"timeout"`
	Tools     []string      `json:"tools,omitempty"`
}

// AgentProvision is how the agent is built and started.
type AgentProvision struct {
	Provider   string            `json:"provider"`
	Command    []string          `json:"command"`
	PromptMode string            `json:"prompt_mode"`
	Dockerfile string            `json:"dockerfile,omitempty"`
	Context    string            `json:"context,omitempty"`
	Image      string            `json:"image,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
}

// Endpoints are the bundle's addresses, as the agent and as the host see
// them.
type Endpoints struct {
	AgentProxyURL     string `json:"agent_proxy_url"`
	AgentGitGateHost  string `json:"agent_git_gate_host"`
	AgentSuperviseURL string `json:"agent_supervise_url"`
	HostProxy         string `json:"host_proxy,omitempty"`
	HostGitGate       string `json:"host_git_gate,omitempty"`
	HostSupervise     string `json:"host_supervise,omitempty"`
}

// HostPorts are the bundle's ports published on the host's 127.0.0.1.
type HostPorts struct {
	Proxy, Gate, Supervise uint16
}

// SmolvmPlan is the smolvm backend's part.
type SmolvmPlan struct {
	MachineName string `json:"machine_name"`
	AgentImage  string `json:"agent_image"`
	// Artifact is the .smolmachine the machine was made from (prune keeps
	// it while the bottle exists).
	Artifact   string   `json:"artifact,omitempty"`
	AllowHosts []string `json:"allow_hosts"`
	GuestEnv   []string `json:"guest_env,omitempty"`
	// User is who the agent runs as in the machine: the image's USER, or
	// the stand-in for an image that runs as root.
	User string `json:"user,omitempty"`
}

// DockerPlan is the docker backend's part.
type DockerPlan struct {
	Container  string   `json:"container"`
	AgentImage string   `json:"agent_image"`
	GuestEnv   []string `json:"guest_env,omitempty"`
}

// Provider is what an agent provider contributes to a plan.
type Provider struct {
	Name       string
	PromptMode string
	Dockerfile string
}

// Files are the paths in a bottle's stage dir that its plan records
// (package stage lays the dir out).
type Files struct {
	Dir, Prompt, AgentToken, OperatorToken, GateRepo string
}

// Options are the inputs of New.
type Options struct {
	Spec      spec.Spec // resolved
	Slug      string    // the bottle's name, claimed
	Workspace string
	Provider  Provider
	Choice    Choice
	Created   time.Time
	// Subnet is the /24 reserved for the bottle.
	Subnet netip.Prefix
	Files  Files
}

// New computes the plan of a bottle from its resolved spec, the choices
// made for it, its name and its subnet.
func New(o Options) (Plan, error) {
	slug := o.Slug
	s := o.Spec
	p := Plan{
		Spec:              s,
		Slug:              slug,
		Created:           o.Created.UTC().Truncate(time.Second),
		Workspace:         o.Workspace,
		StageDir:          o.Files.Dir,
		Backend:           o.Choice.Backend,
		NetworkMode:       o.Choice.NetworkMode,
		Why:               o.Choice.Why,
		PromptFile:        o.Files.Prompt,
		AgentTokenFile:    o.Files.AgentToken,
		OperatorTokenFile: o.Files.OperatorToken,
		GitGate: GitGatePlan{
			Source:         o.Workspace,
			Repo:           o.Files.GateRepo,
			Branch:         "bottle/" + slug + "/work",
			Remote:         gitstage.RemoteName(slug),
			Push:           s.PushPatterns(slug),
			AllowForce:     s.Git.AllowForce,
			AllowDelete:    s.Git.AllowDelete,
			AllowTags:      s.Git.AllowTags,
			ProtectedPaths: s.Git.ProtectedPaths.List(),
		},
		Egress: EgressPlan{Allow: s.Egress.Allow, Deny: s.Egress.Deny, Secrets: s.Egress.Secrets},
		Supervise: SupervisePlan{
			Approvals: s.Supervise.Approvals,
			Timeout:   time.Duration(*s.Supervise.Timeout),
			Tools:     s.Supervise.Tools,
		},
		Agent: AgentProvision{
			Provider:   s.Agent.Provider,
			Command:    s.Agent.Command,
			PromptMode: o.Provider.PromptMode,
			Dockerfile: s.Agent.Dockerfile,
			Context:    s.Agent.Context,
			Image:      s.Agent.Image,
			Env:        s.Agent.Env,
		},
	}
	if p.Agent.Dockerfile == "" && p.Agent.Image == "" {
		p.Agent.Dockerfile = o.Provider.Dockerfile
	}
	p.Bundle = BundlePlan{Container: "bottle-" + slug + "-bundle", Network: "bottle-" + slug}
	agentImage := "docker-bottle/" + slug + ":agent"
	switch p.Backend {
	case spec.BackendDocker:
		p.Bundle.InternalNetwork = "bottle-" + slug + "-internal"
		p.Docker = &DockerPlan{Container: "bottle-" + slug + "-agent", AgentImage: agentImage}
	case spec.BackendSmolvm:
		p.Smolvm = &SmolvmPlan{MachineName: "bottle-" + slug, AgentImage: agentImage}
		if p.NetworkMode == spec.NetworkLoopback {
			p.Smolvm.AllowHosts = []string{SmolvmGateway}
		}
	default:
		return Plan{}, fmt.Errorf("plan: unknown backend %q", p.Backend)
	}
	p = p.WithSubnet(o.Subnet)
	if p.NetworkMode != spec.NetworkLoopback {
		// The agent reaches the bundle at container ports: no published
		// port is needed, so the endpoints are known now.
		p = p.WithEndpoints(HostPorts{})
	}

	return p, nil
}

// WithStart returns a copy of p that records where the bottle starts: the
// branch and commit of the gate's repository once it is made
// (gitstage.Start).
func (p Plan) WithStart(ref, commit string) Plan {
	q := p
	q.GitGate.StartRef, q.GitGate.StartCommit = ref, commit
	return q
}

// ThroughEngine says whether the bottle goes through the engine API, as
// on a remote engine: its stage on the engine (BundlePlan.StageOnEngine,
// the record of the choice), its bundle reached by the engine's exec of
// the bundle's dial rather than published ports (it publishes none), its
// git remote bottle::NAME. Chosen once when the bottle is made, so every
// later command of the bottle follows it.
func (p Plan) ThroughEngine() bool { return p.Bundle.StageOnEngine }

// WithStageOnEngine returns a copy of p whose bundle stage lives on the
// engine (BundlePlan.StageOnEngine) when on and its agent runs on the
// engine too; an agent that runs on this machine (smolvm) reads its guest
// dir from the stage dir here.
func (p Plan) WithStageOnEngine(on bool) Plan {
	q := p
	q.Bundle.StageOnEngine = on && q.Docker != nil
	return q
}

// WithEndpoints returns a copy of p completed with the bundle's endpoints
// and the guest environment that points at them. Zero host ports leave the
// host-side endpoints empty.
func (p Plan) WithEndpoints(hp HostPorts) Plan {
	ip, proxy, gate, sup := p.Bundle.IP.String(), ProxyPort, GatePort, SupervisePort
	switch {
	case p.Backend == spec.BackendDocker:
		ip = p.Bundle.InternalIP.String()
	case p.NetworkMode == spec.NetworkLoopback:
		ip, proxy, gate, sup = SmolvmGateway, int(hp.Proxy), int(hp.Gate), int(hp.Supervise)
	}
	hostport := func(port int) string {
		// The ports are the bundle's container ports or the host ports the
		// engine published them on: all below 65536.
		return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String() //nolint:gosec // G115: see above
	}
	e := Endpoints{
		AgentProxyURL:     "http://" + hostport(proxy),
		AgentGitGateHost:  hostport(gate),
		AgentSuperviseURL: "http://" + hostport(sup),
	}
	if hp.Proxy != 0 {
		e.HostProxy = "127.0.0.1:" + strconv.Itoa(int(hp.Proxy))
		e.HostGitGate = "127.0.0.1:" + strconv.Itoa(int(hp.Gate))
		e.HostSupervise = "127.0.0.1:" + strconv.Itoa(int(hp.Supervise))
	}
	q := p
	q.Endpoints = &e
	env := q.guestEnv(ip)
	if q.Smolvm != nil {
		s := *q.Smolvm
		s.GuestEnv = env
		q.Smolvm = &s
	}
	if q.Docker != nil {
		d := *q.Docker
		d.GuestEnv = env
		q.Docker = &d
	}
	return q
}

// guestEnv is the agent's environment: proxy, CA and git settings, all with
// IP-literal URLs because the guest has no DNS it may use. No token is in
// it: the workspace bootstrap reads the token file and adds credentials in
// the agent's own process.
func (p Plan) guestEnv(bundleIP string) []string {
	e := p.Endpoints
	env := []string{
		"HTTPS_PROXY=" + e.AgentProxyURL, "HTTP_PROXY=" + e.AgentProxyURL,
		"https_proxy=" + e.AgentProxyURL, "http_proxy=" + e.AgentProxyURL,
		"NO_PROXY=" + bundleIP, "no_proxy=" + bundleIP,
		"SSL_CERT_FILE=" + GuestCABundle,
		"NODE_EXTRA_CA_CERTS=" + GuestCAFile,
		"GIT_SSL_CAINFO=" + GuestCABundle,
		"REQUESTS_CA_BUNDLE=" + GuestCABundle,
		"CURL_CA_BUNDLE=" + GuestCABundle,
		// Tools that read only their own variable: pip, the AWS SDKs and
		// CLI, Deno, cargo.
		"PIP_CERT=" + GuestCABundle,
		"AWS_CA_BUNDLE=" + GuestCABundle,
		"DENO_CERT=" + GuestCABundle,
		"CARGO_HTTP_CAINFO=" + GuestCABundle,
		"BOTTLE_NAME=" + p.Slug,
		"BOTTLE_BRANCH=" + p.GitGate.Branch,
		"BOTTLE_GATE_URL=http://" + e.AgentGitGateHost + "/",
		"BOTTLE_SUPERVISE_URL=" + e.AgentSuperviseURL,
		"BOTTLE_PROMPT_FILE=" + GuestPromptFile,
		"BOTTLE_TOKEN_FILE=" + GuestTokenFile,
		"BOTTLE_USER_CONFIG=" + GuestUserConfig,
	}
	// git reads its credentials from the token file through a helper, so
	// the token never sits in the environment or a command line.
	gate := "http://" + e.AgentGitGateHost + "/"
	git := [][2]string{
		{"credential." + gate + ".helper",
			`!f() { test "$1" = get && echo username=bottle && printf 'password=%s\n' "$(cat ` + GuestTokenFile + `)"; }; f`},
		{"credential." + gate + ".useHttpPath", "false"},
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(git)))
	for i, kv := range git {
		env = append(env, "GIT_CONFIG_KEY_"+strconv.Itoa(i)+"="+kv[0], "GIT_CONFIG_VALUE_"+strconv.Itoa(i)+"="+kv[1])
	}
	keys := make([]string, 0, len(p.Agent.Env))
	for k := range p.Agent.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+p.Agent.Env[k])
	}
	return env
}

// WithSubnet returns a copy of p moved to another reserved /24 (bring-up
// does this when another engine user took the planned one meanwhile): the
// bundle's addresses, the smolvm allowlist and the endpoints follow.
func (p Plan) WithSubnet(reserved netip.Prefix) Plan {
	q := p
	q.Bundle.Reserved = reserved
	bundleNet := NewSubnet(reserved)
	if q.Backend == spec.BackendDocker {
		var internal Subnet
		bundleNet, internal = NewSubnet(reserved).Halves()
		q.Bundle.InternalSubnet, q.Bundle.InternalIP = internal.Prefix, internal.Bundle
	}
	q.Bundle.Subnet, q.Bundle.Gateway, q.Bundle.IP = bundleNet.Prefix, bundleNet.Gateway, bundleNet.Bundle
	if q.Smolvm != nil && q.NetworkMode != spec.NetworkLoopback {
		s := *q.Smolvm
		s.AllowHosts = []string{bundleNet.Bundle.String()}
		q.Smolvm = &s
	}
	if q.Endpoints != nil && q.NetworkMode != spec.NetworkLoopback {
		q = q.WithEndpoints(HostPorts{})
	}
	return q
}
