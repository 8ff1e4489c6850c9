package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker-bottle/docker-bottle/plan"
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
	})
}

// Start boots the machine and its workload.
func (s Smolvm) Start(ctx context.Context, p plan.Plan) error {
	return s.CLI.MachineStart(ctx, p.Smolvm.MachineName)
}

// Exec runs the agent command in the machine with the user's terminal and
// returns its exit code.
func (s Smolvm) Exec(ctx context.Context, p plan.Plan, command []string, tty, interactive bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return s.CLI.MachineExec(ctx, smolvm.ExecOptions{
		Name: p.Smolvm.MachineName, Command: command, TTY: tty, Interactive: interactive,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
	})
}

// Delete removes the machine; an unknown machine is not an error.
func (s Smolvm) Delete(ctx context.Context, name string) error {
	err := s.CLI.MachineDelete(ctx, name)
	if errors.Is(err, smolvm.ErrMachineNotFound) {
		return nil
	}
	return err
}
