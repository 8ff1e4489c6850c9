package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/smolvm"
)

// Smolvm runs the agent in a smolvm microVM whose only network route is the
// allowlist the plan gives (the bundle's address).
type Smolvm struct {
	CLI *smolvm.CLI
}

// MachineOptions say how the machine is made.
type MachineOptions struct {
	// Artifact is the .smolmachine sidecar the pipeline packed.
	Artifact string
	// Workload runs on every start in place of the image's entrypoint; it
	// keeps the machine up while the agent runs through exec.
	Workload  []string
	CPUs      int
	MemoryMiB int
	Labels    map[string]string
}

// Create records the machine (nothing boots yet): the artifact, labels,
// the guest env, the allowlist of the network mode, and the guest dir
// mounted read-only.
func (s Smolvm) Create(ctx context.Context, p plan.Plan, o MachineOptions) error {
	if p.Smolvm == nil {
		return fmt.Errorf("bottle %s is not planned for the smolvm backend", p.Slug)
	}
	env := make([]smolvm.EnvVar, 0, len(p.Smolvm.GuestEnv))
	for _, kv := range p.Smolvm.GuestEnv {
		k, v, _ := strings.Cut(kv, "=")
		// The guest env is made by the plan from vetted values: proxy and
		// gate addresses, file paths, placeholders, and the user's
		// agent.env (which the spec already refuses secret-looking names
		// in). It never holds a token.
		env = append(env, smolvm.NotSecretEnv(k, v))
	}
	return s.CLI.MachineCreate(ctx, smolvm.CreateOptions{
		Name:       p.Smolvm.MachineName,
		Labels:     o.Labels,
		From:       o.Artifact,
		Env:        env,
		AllowHosts: p.Smolvm.AllowHosts,
		Volumes: []smolvm.Volume{{Host: filepath.Join(p.StageDir, plan.StageGuestDir),
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

// Start boots the machine and its workload.
func (s Smolvm) Start(ctx context.Context, p plan.Plan) error {
	return s.CLI.MachineStart(ctx, p.Smolvm.MachineName)
}

// Exec runs a command in the machine next to the agent, with the agent's
// network (guest.Exec), and returns its exit code. It passes the bundle's
// current endpoints (EndpointEnv), so a shell in a restarted loopback
// bottle sees the right proxy, then the user's variables, which smolvm
// refuses when their names look like secrets (it shows -e values).
func (s Smolvm) Exec(ctx context.Context, p plan.Plan, o ExecOptions) (int, error) {
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
	for _, kv := range p.EndpointEnv() {
		k, v, _ := strings.Cut(kv, "=")
		// Addresses and git settings, never a token (plan.EndpointEnv).
		env = append(env, smolvm.NotSecretEnv(k, v))
	}
	return env
}

// StartSession starts the agent's session in the machine: the helper runs
// command (nil: the last session's command again) under a terminal of its
// own, keeping its output, known by id. `exec -d` keeps the session alive
// beyond the exec (it runs in the machine's keep-alive container and lives
// as long as the machine). With wait, it returns once the session runs.
func (s Smolvm) StartSession(ctx context.Context, p plan.Plan, id string, command []string, wait bool) error {
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
		_, _ = s.Logs(ctx, p, false, "20", &logs, &logs)
		return fmt.Errorf("the agent's session did not start (exit code %d): %s\n%s", code, strings.TrimSpace(out.String()), strings.TrimSpace(logs.String()))
	}
	return nil
}

// Attach attaches the user's streams to the agent's session (id, or the
// running one when empty) and returns the agent's exit code, or 0 when the
// user detached. The exec streams (-i) even without a terminal; stdin is
// forwarded only when interactive.
func (s Smolvm) Attach(ctx context.Context, p plan.Plan, id string, tty, interactive bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	o := smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.SessionAttach(id), Env: endpointEnv(p),
		Interactive: true, TTY: tty, Stdout: dockercli.OutFile(stdout), Stderr: dockercli.OutFile(stderr)}
	if interactive {
		o.Stdin = dockercli.InFile(stdin)
	}
	code, err := s.CLI.MachineExec(ctx, o)
	if errors.Is(err, smolvm.ErrMachineStopped) {
		// The bottle was stopped under the user: the agent was killed, as
		// `docker run` reports for a container stopped while attached.
		return 137, nil
	}
	return code, err
}

// Logs prints the agent's output kept by its session: the last tail lines
// ("all": everything), following while the agent runs. Following streams
// the exec's output (--stream), which otherwise smolvm holds until the
// command exits.
func (s Smolvm) Logs(ctx context.Context, p plan.Plan, follow bool, tail string, stdout, stderr io.Writer) (int, error) {
	code, err := s.CLI.MachineExec(ctx, smolvm.ExecOptions{Name: p.Smolvm.MachineName, User: s.user(ctx, p), Command: guest.SessionLogs(follow, tail),
		Env: endpointEnv(p), Stream: follow, Stdout: dockercli.OutFile(stdout), Stderr: dockercli.OutFile(stderr)})
	if follow && errors.Is(err, smolvm.ErrMachineStopped) {
		// Following ends when the bottle stops, as `docker logs -f` does.
		return 0, nil
	}
	return code, err
}

// SessionStatus asks the machine whether the agent's session runs.
func (s Smolvm) SessionStatus(ctx context.Context, p plan.Plan) (guest.SessionStatus, error) {
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

// Delete removes the machine; an unknown machine is not an error.
func (s Smolvm) Delete(ctx context.Context, name string) error {
	err := s.CLI.MachineDelete(ctx, name)
	if errors.Is(err, smolvm.ErrMachineNotFound) {
		return nil
	}
	return err
}
