// Package smolvm is the smolvm backend: the agent runs in a smolvm microVM
// whose only network route is the allowlist the plan gives (the bundle's
// address), in a session of the bottle's helper that keeps its output and
// lets attach come and go, as the engine does for a container.
package smolvm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

func init() {
	backend.Register(spec.BackendSmolvm, func(d backend.Deps) backend.Backend {
		return Smolvm{CLI: d.Smolvm, Engine: d.Engine, Step: d.Step}
	})
}

// Smolvm runs the agent in a machine.
type Smolvm struct {
	// CLI is the smolvm CLI; nil when smolvm is not installed.
	CLI *smolvm.CLI
	// Engine holds the agent image, whose user the agent runs as.
	Engine backend.Engine
	// Step prints a progress line; nil prints nothing.
	Step func(format string, args ...any)
}

// errLaunch is a run's error without smolvm.
var errLaunch = &backend.StepError{Step: "launching the agent", Err: errors.New("smolvm is not installed")}

// errNotInstalled says what cannot be done without smolvm.
func errNotInstalled(what string) error {
	return errors.New("smolvm is not installed, so " + what)
}

// Image builds the agent image and packs it into a cached artifact for the
// engine's arch (the machine's).
func (s Smolvm) Image(ctx context.Context, pipe *image.Pipeline, req image.Request, arch string) (backend.Built, error) {
	if s.CLI == nil {
		return backend.Built{}, errLaunch
	}
	s.step("image: building, packing and caching the agent's artifact")
	req.Platform = "linux/" + arch
	art, err := pipe.Run(ctx, req)
	if err != nil {
		return backend.Built{}, &backend.StepError{Step: "making the agent's artifact", Err: err}
	}
	return backend.Built{Artifact: art.Artifact.Path, Image: art.ImageID, User: art.User, CacheHit: art.CacheHit}, nil
}

func (s Smolvm) step(format string, args ...any) {
	if s.Step != nil {
		s.Step(format, args...)
	}
}

// Create records in the plan the artifact and the agent's user (the same
// as on the docker backend: the image's, never root), has the plan saved
// (a create that fails half way may still leave a machine for removal to
// find), and makes the machine from the artifact, not started.
func (s Smolvm) Create(ctx context.Context, p plan.Plan, o backend.CreateOptions) (plan.Plan, error) {
	if s.CLI == nil {
		return p, errLaunch
	}
	if p.Smolvm == nil {
		return p, fmt.Errorf("bottle %s is not planned for the smolvm backend", p.Slug)
	}
	s.step("machine: creating %s", p.Smolvm.MachineName)
	sp := *p.Smolvm
	sp.Artifact = o.Image.Artifact
	var err error
	if sp.User, err = backend.ResolveUser(ctx, s.Engine, p, o.Image.Image, o.Image.User); err != nil {
		return p, &backend.StepError{Step: "choosing the agent's user", Err: err}
	}
	p.Smolvm = &sp
	if p, err = o.Record(p); err != nil {
		return p, err
	}
	mo := machineOptions{
		Artifact: o.Image.Artifact,
		Workload: []string{guest.HelperPath, guest.SubcommandSleep},
		CPUs:     o.CPUs,
		Labels:   o.Labels,
	}
	if o.Memory != 0 {
		mo.MemoryMiB = int(o.Memory >> 20)
	}
	if err := s.create(ctx, p, mo); err != nil {
		return p, &backend.StepError{Step: "creating the machine", Err: err}
	}
	return p, nil
}

// machineOptions say how the machine is made.
type machineOptions struct {
	// Artifact is the .smolmachine sidecar the pipeline packed.
	Artifact string
	// Workload runs on every start in place of the image's entrypoint; it
	// keeps the machine up while the agent runs through exec.
	Workload  []string
	CPUs      int
	MemoryMiB int
	Labels    map[string]string
}

// create records the machine (nothing boots yet): the artifact, labels,
// the guest env, the allowlist of the network mode, and the guest dir
// mounted read-only.
func (s Smolvm) create(ctx context.Context, p plan.Plan, o machineOptions) error {
	env := make([]smolvm.EnvVar, 0, len(p.Smolvm.GuestEnv))
	for _, kv := range p.Smolvm.GuestEnv {
		k, v, _ := strings.Cut(kv, "=")
		// The guest env is made by the plan from vetted values: proxy and
		// gate addresses, file paths, placeholders, and the user's
		// agent.env (which the spec already refuses secret-looking names
		// in). It never holds a token.
		env = append(env, smolvm.NotSecretEnv(k, v))
	}
	ports, err := machinePorts(p)
	if err != nil {
		return err
	}
	return s.CLI.MachineCreate(ctx, smolvm.CreateOptions{
		Ports:      ports,
		Name:       p.Smolvm.MachineName,
		Labels:     o.Labels,
		From:       o.Artifact,
		Env:        env,
		AllowHosts: p.Smolvm.AllowHosts,
		Volumes: []smolvm.Volume{{Host: stage.Of(p).File(stage.GuestDir),
			Guest: plan.GuestDir, ReadOnly: true}},
		CPUs:      o.CPUs,
		MemoryMiB: o.MemoryMiB,
		Workload:  o.Workload,
		User:      s.user(ctx, p),
	})
}

// user is the --user of the machine and its execs: the plan's agent user,
// where smolvm takes --user (1.14.2 and later). Older ones run the agent
// as root; doctor warns about them.
func (s Smolvm) user(ctx context.Context, p plan.Plan) string {
	if p.Smolvm.User == "" || !s.CLI.HasUserFlag(ctx) {
		return ""
	}
	return p.Smolvm.User
}

// Launch boots the machine and runs the agent's command in a new session
// of the helper, then (attached) attaches to it.
func (s Smolvm) Launch(ctx context.Context, p plan.Plan, o backend.LaunchOptions) (backend.Exit, error) {
	var ex backend.Exit
	if s.CLI == nil {
		return ex, errLaunch
	}
	if err := s.CLI.MachineStart(ctx, p.Smolvm.MachineName); err != nil {
		return ex, &backend.StepError{Step: "starting the machine", Err: err}
	}
	ex.Launched = true
	id := newSessionID()
	if err := s.startSession(ctx, p, id, o.Command, o.Detach); err != nil {
		return ex, &backend.StepError{Step: "starting the agent", Err: err}
	}
	if o.Detach {
		return ex, nil
	}
	// Attached, Ctrl-C belongs to the agent, so the attach must not end
	// when ctx does.
	actx := context.WithoutCancel(ctx)
	code, err := s.attach(actx, p, id, o.TTY, o.Interactive, o.Streams)
	if err != nil {
		return ex, &backend.StepError{Step: "attaching to the agent", Err: err}
	}
	ex.Code = code
	if code == 0 {
		// 0 is also what a detach (Ctrl-P Ctrl-Q) ends with: the session
		// says which.
		if st, err := s.sessionStatus(actx, p); err == nil && st.Running && st.ID == id {
			ex.Detached = true
		}
	}
	return ex, nil
}

// Start boots the machine and, unless it still runs one, a new session of
// the agent's last command.
func (s Smolvm) Start(ctx context.Context, p plan.Plan) error {
	if s.CLI == nil {
		return errNotInstalled("the machine cannot be started")
	}
	if err := s.CLI.MachineStart(ctx, p.Smolvm.MachineName); err != nil {
		return err
	}
	st, err := s.sessionStatus(ctx, p)
	if err != nil {
		return err
	}
	if st.Running {
		return nil
	}
	return s.startSession(ctx, p, newSessionID(), nil, true)
}

// Stop stops the machine.
func (s Smolvm) Stop(ctx context.Context, p plan.Plan) error {
	if s.CLI == nil {
		return errNotInstalled("the machine cannot be stopped")
	}
	return s.CLI.MachineStop(ctx, p.Smolvm.MachineName)
}

// newSessionID names an agent session, so that an attach or a wait made
// right after its start finds this session and not an earlier one.
func newSessionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// installed refuses to reach into a machine without smolvm.
func (s Smolvm) installed(p plan.Plan) error {
	if s.CLI == nil {
		return fmt.Errorf("bottle %s runs in smolvm, which is not installed here", p.Slug)
	}
	return nil
}

// Exec runs a command in the machine next to the agent, with the agent's
// network (guest.Exec), and returns its exit code. It passes the bundle's
// current endpoints (EndpointEnv), so a shell in a restarted loopback
// bottle sees the right proxy, then the user's variables, which smolvm
// refuses when their names look like secrets (it shows -e values).
func (s Smolvm) Exec(ctx context.Context, p plan.Plan, o backend.ExecOptions) (int, error) {
	if err := s.installed(p); err != nil {
		return 0, err
	}
	env := endpointEnv(p)
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// A bare name takes the caller's value, as with docker exec.
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		env = append(env, smolvm.PlainEnv(k, v))
	}
	return s.CLI.MachineExec(ctx, smolvm.ExecOptions{
		Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.Exec(o.Command), Env: env, Workdir: o.Workdir,
		TTY: o.TTY, Interactive: o.Interactive,
		Stdin: dockercli.InFile(o.Stdin), Stdout: dockercli.OutFile(o.Stdout), Stderr: dockercli.OutFile(o.Stderr),
	})
}

// endpointEnv is `exec -e` for the bundle's current endpoints: the
// machine's recorded env names the ports of the bundle's first start.
func endpointEnv(p plan.Plan) []smolvm.EnvVar {
	var env []smolvm.EnvVar
	for _, kv := range plan.EndpointEnv(p.Smolvm.GuestEnv) {
		k, v, _ := strings.Cut(kv, "=")
		// Addresses and git settings, never a token (plan.EndpointEnv).
		env = append(env, smolvm.NotSecretEnv(k, v))
	}
	return env
}

// startSession starts the agent's session in the machine: the helper runs
// command (nil: the last session's command again) under a terminal of its
// own, keeping its output, known by id. `exec -d` keeps the session alive
// beyond the exec (it runs in the machine's keep-alive container and lives
// as long as the machine). With wait, it returns once the session runs.
func (s Smolvm) startSession(ctx context.Context, p plan.Plan, id string, command []string, wait bool) error {
	if _, err := s.CLI.MachineExec(ctx, smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p),
		Command: guest.SessionStart(id, command), Env: endpointEnv(p), Detach: true}); err != nil {
		return fmt.Errorf("starting the agent's session: %w", err)
	}
	if !wait {
		return nil
	}
	var out bytes.Buffer
	code, err := s.CLI.MachineExec(ctx, smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p),
		Command: guest.SessionWait(id), Env: endpointEnv(p), Stdout: &out, Stderr: &out})
	if err != nil {
		return fmt.Errorf("waiting for the agent's session: %w", err)
	}
	if code != 0 {
		var logs bytes.Buffer
		_, _ = s.logs(ctx, p, false, "20", &logs, &logs)
		return fmt.Errorf("the agent's session did not start (exit code %d): %s\n%s", code, strings.TrimSpace(out.String()), strings.TrimSpace(logs.String()))
	}
	return nil
}

// Attach attaches the user's streams to the running session of the agent
// and returns the agent's exit code, or 0 when the user detached.
func (s Smolvm) Attach(ctx context.Context, p plan.Plan, o backend.AttachOptions) (backend.Exit, error) {
	if err := s.installed(p); err != nil {
		return backend.Exit{}, err
	}
	code, err := s.attach(ctx, p, "", o.TTY, true, o.Streams)
	return backend.Exit{Code: code}, err
}

// attach attaches the streams to the agent's session (id, or the running
// one when empty) and returns the agent's exit code, or 0 when the user
// detached. The exec streams (-i) even without a terminal; stdin is
// forwarded only when interactive.
func (s Smolvm) attach(ctx context.Context, p plan.Plan, id string, tty, interactive bool, st backend.Streams) (int, error) {
	o := smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.SessionAttach(id), Env: endpointEnv(p),
		Interactive: true, TTY: tty, Stdout: dockercli.OutFile(st.Stdout), Stderr: dockercli.OutFile(st.Stderr)}
	if interactive {
		o.Stdin = dockercli.InFile(st.Stdin)
	}
	code, err := s.CLI.MachineExec(ctx, o)
	if errors.Is(err, smolvm.ErrMachineStopped) {
		// The bottle was stopped under the user: the agent was killed, as
		// `docker run` reports for a container stopped while attached.
		return 137, nil
	}
	return code, err
}

// Logs prints the agent's output kept by its session, which has it as its
// terminal gave it, without times.
func (s Smolvm) Logs(ctx context.Context, p plan.Plan, o backend.LogsOptions) (int, error) {
	if err := s.installed(p); err != nil {
		return 0, err
	}
	if o.Timestamps || o.Since != "" || o.Until != "" {
		return 0, fmt.Errorf("bottle %s runs in smolvm, whose agent log is its terminal's output as it came, without times: --timestamps, --since and --until work with the docker backend only", p.Slug)
	}
	return s.logs(ctx, p, o.Follow, o.Tail, o.Stdout, o.Stderr)
}

// logs prints the last tail lines ("all": everything), following while the
// agent runs. Following streams the exec's output (--stream), which
// otherwise smolvm holds until the command exits.
func (s Smolvm) logs(ctx context.Context, p plan.Plan, follow bool, tail string, stdout, stderr io.Writer) (int, error) {
	code, err := s.CLI.MachineExec(ctx, smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.SessionLogs(follow, tail),
		Env: endpointEnv(p), Stream: follow, Stdout: dockercli.OutFile(stdout), Stderr: dockercli.OutFile(stderr)})
	if follow && errors.Is(err, smolvm.ErrMachineStopped) {
		// Following ends when the bottle stops, as `docker logs -f` does.
		return 0, nil
	}
	return code, err
}

// sessionStatus asks the machine whether the agent's session runs.
func (s Smolvm) sessionStatus(ctx context.Context, p plan.Plan) (guest.SessionStatus, error) {
	var out, errb bytes.Buffer
	code, err := s.CLI.MachineExec(ctx, smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.SessionStatusCommand(),
		Env: endpointEnv(p), Stdout: &out, Stderr: &errb})
	if err != nil {
		return guest.SessionStatus{}, fmt.Errorf("asking for the agent's session: %w", err)
	}
	var st guest.SessionStatus
	if code != 0 {
		return st, fmt.Errorf("asking for the agent's session: exit code %d: %s", code, strings.TrimSpace(errb.String()))
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return st, fmt.Errorf("asking for the agent's session: %w (%q)", err, out.String())
	}
	return st, nil
}

// Status is the machine's state.
func (s Smolvm) Status(ctx context.Context, p plan.Plan) string {
	if s.CLI == nil {
		return "unknown (smolvm not found)"
	}
	m, err := s.CLI.MachineStatus(ctx, p.Smolvm.MachineName)
	if err != nil {
		return backend.StateMissing
	}
	return string(m.State)
}

// Remove deletes the machine; an unknown machine is not an error.
func (s Smolvm) Remove(ctx context.Context, p plan.Plan) error {
	name := p.Smolvm.MachineName
	if s.CLI == nil {
		return fmt.Errorf("smolvm is not installed, so machine %s cannot be deleted: install smolvm or delete it with `smolvm machine delete -n %s -f`",
			name, name)
	}
	err := s.CLI.MachineDelete(ctx, name)
	if errors.Is(err, smolvm.ErrMachineNotFound) {
		return nil
	}
	return err
}

// Objects are the machine and the artifact it was made from.
func (s Smolvm) Objects(p plan.Plan) []backend.Object {
	objs := []backend.Object{{Kind: backend.KindMachine, Name: p.Smolvm.MachineName, Role: "agent"}}
	if p.Smolvm.Artifact != "" {
		objs = append(objs, backend.Object{Kind: backend.KindArtifact, Name: p.Smolvm.Artifact, Role: "image"})
	}
	return objs
}

// HostAddr is the gateway the machine's network gives the host.
func (s Smolvm) HostAddr(plan.Plan) netip.Addr { return netip.MustParseAddr(plan.SmolvmGateway) }

// Describe names the machine and its allowlist.
func (s Smolvm) Describe(p plan.Plan) (string, string) {
	return "machine", p.Smolvm.MachineName + ", allow-host " + strings.Join(p.Smolvm.AllowHosts, ", ")
}
