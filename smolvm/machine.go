package smolvm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Machine is one object of `machine ls --json` / `machine status --json`
// (smolvm-cli.md section 4). Nullable numbers are pointers.
type Machine struct {
	Name                   string            `json:"name"`
	State                  State             `json:"state"`
	CPUs                   int               `json:"cpus"`
	MemoryMiB              int               `json:"memory_mib"`
	PID                    *int              `json:"pid"`
	Mounts                 int               `json:"mounts"`
	Ports                  int               `json:"ports"`
	CreatedAt              int64             `json:"created_at"` // unix seconds
	StorageGB              *int              `json:"storage_gb"`
	OverlayGB              *int              `json:"overlay_gb"`
	Image                  *string           `json:"image"`
	Entrypoint             []string          `json:"entrypoint"`
	Cmd                    []string          `json:"cmd"`
	Ephemeral              bool              `json:"ephemeral"`
	GPU                    bool              `json:"gpu"`
	GPUVRAMMiB             *int              `json:"gpu_vram_mib"`
	CUDA                   bool              `json:"cuda"`
	Forkable               bool              `json:"forkable"`
	CUDAForkPoolSize       *int              `json:"cuda_fork_pool_size"`
	CUDAVRAMLimitMiB       *int              `json:"cuda_vram_limit_mib"`
	ForkpointHeld          bool              `json:"forkpoint_held"`
	Labels                 map[string]string `json:"labels"`
	RestartPolicy          string            `json:"restart_policy"`
	RestartMaxRetries      *int              `json:"restart_max_retries"`
	RestartCount           int               `json:"restart_count"`
	HealthCmd              *string           `json:"health_cmd"`
	HealthIntervalSecs     *int              `json:"health_interval_secs"`
	HealthTimeoutSecs      *int              `json:"health_timeout_secs"`
	HealthRetries          *int              `json:"health_retries"`
	HealthStartupGraceSecs *int              `json:"health_startup_grace_secs"`
	Network                bool              `json:"network"`
}

// State is a machine state as smolvm reports it.
type State string

// The states smolvm reports (from a live PID and vsock probe).
const (
	StateCreated     State = "created"
	StateRunning     State = "running"
	StateStopped     State = "stopped"
	StateFailed      State = "failed"
	StateUnreachable State = "unreachable"
	StateFrozen      State = "frozen"
)

// Volume is a host directory shared into the guest (virtiofs).
type Volume struct {
	Host     string // absolute host path
	Guest    string // absolute guest path
	ReadOnly bool
}

func (v Volume) arg() (string, error) {
	if !filepath.IsAbs(v.Host) || !strings.HasPrefix(v.Guest, "/") {
		return "", fmt.Errorf("%w: volume %s:%s: both paths must be absolute", ErrInvalidOption, v.Host, v.Guest)
	}
	if strings.Contains(v.Host, ":") || strings.Contains(v.Guest, ":") {
		return "", fmt.Errorf("%w: volume %s:%s: smolvm splits volumes on ':', so a path cannot contain one", ErrInvalidOption, v.Host, v.Guest)
	}
	s := v.Host + ":" + v.Guest
	if v.ReadOnly {
		s += ":ro"
	}
	return s, nil
}

// CreateOptions is `smolvm machine create`. Name is required (docker
// bottle always names its machines).
type CreateOptions struct {
	Name   string
	Labels map[string]string
	// From is a .smolmachine sidecar written by PackCreate. Image is a
	// registry reference; the two conflict.
	From  string
	Image string
	Env   []EnvVar
	// AllowHosts (--allow-host) also turns on smolvm's DNS name filter,
	// which AllowCIDRs alone does not.
	AllowHosts []string
	AllowCIDRs []netip.Prefix
	Volumes    []Volume
	CPUs       int // 0: smolvm's default (or the artifact's)
	MemoryMiB  int // 0: smolvm's default (or the artifact's)
	Net        bool
	// Workload is the persistent command launched on every start, in
	// place of the image's ENTRYPOINT+CMD (e.g. sleep infinity).
	Workload []string
	// User runs the workload as a name of the image or a numeric
	// uid[:gid] (--user, smolvm 1.14.2 and later).
	User string
	// Ports (--port HOST:GUEST) forward TCP from the host's loopback to
	// the guest, inbound only.
	Ports []PortMap
}

// PortMap is one --port: Host on the host's loopback to Guest.
type PortMap struct{ Host, Guest int }

func (o CreateOptions) args() ([]string, error) {
	if err := ValidateName(o.Name); err != nil {
		return nil, err
	}
	if o.From != "" && o.Image != "" {
		return nil, fmt.Errorf("%w: --from and --image conflict", ErrInvalidOption)
	}
	args := []string{"machine", "create", "--name", o.Name}
	keys := make([]string, 0, len(o.Labels))
	for k := range o.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "=\n") || strings.Contains(o.Labels[k], "\n") {
			return nil, fmt.Errorf("%w: label %q=%q", ErrInvalidOption, k, o.Labels[k])
		}
		args = append(args, "--label", k+"="+o.Labels[k])
	}
	if o.From != "" {
		args = append(args, "--from", o.From)
	}
	if o.Image != "" {
		if err := ValidateImageRef(o.Image); err != nil {
			return nil, err
		}
		args = append(args, "--image", o.Image)
	}
	if o.CPUs < 0 || o.MemoryMiB < 0 {
		return nil, fmt.Errorf("%w: negative cpus or memory", ErrInvalidOption)
	}
	if o.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(o.CPUs))
	}
	if o.MemoryMiB > 0 {
		args = append(args, "--mem", strconv.Itoa(o.MemoryMiB))
	}
	for _, v := range o.Volumes {
		s, err := v.arg()
		if err != nil {
			return nil, err
		}
		args = append(args, "--volume", s)
	}
	if o.Net {
		args = append(args, "--net")
	}
	for _, h := range o.AllowHosts {
		if h == "" || strings.ContainsAny(h, " /") || (strings.Contains(h, ":") && !isIPv6(h)) {
			return nil, fmt.Errorf("%w: --allow-host %q: give a host name or an IP, without a port", ErrInvalidOption, h)
		}
		args = append(args, "--allow-host", h)
	}
	for _, p := range o.AllowCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid --allow-cidr", ErrInvalidOption)
		}
		args = append(args, "--allow-cidr", p.String())
	}
	for _, pm := range o.Ports {
		if pm.Host < 1 || pm.Host > 65535 || pm.Guest < 1 || pm.Guest > 65535 {
			return nil, fmt.Errorf("%w: --port %d:%d is out of range 1-65535", ErrInvalidOption, pm.Host, pm.Guest)
		}
		args = append(args, "--port", strconv.Itoa(pm.Host)+":"+strconv.Itoa(pm.Guest))
	}
	env, err := envArgs(o.Env)
	if err != nil {
		return nil, err
	}
	args = append(args, env...)
	if o.User != "" {
		args = append(args, "--user", o.User)
	}
	if len(o.Workload) > 0 {
		args = append(args, "--")
		args = append(args, o.Workload...)
	}
	return args, nil
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// MachineCreate records a machine (`machine create`); nothing boots.
func (c *CLI) MachineCreate(ctx context.Context, o CreateOptions) error {
	op := fmt.Sprintf("creating smolvm machine %q", o.Name)
	args, err := o.args()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != nil && v.Less(MinVersion) && o.From != "" && len(o.AllowHosts)+len(o.AllowCIDRs) > 0 {
		_, verr := v.Check()
		return fmt.Errorf("%s: %w", op, verr)
	}
	if err := c.checkUserFlag(o.User); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.run(ctx, invocation{op: op, machine: o.Name, args: args})
	return err
}

// MachineStart boots a machine and launches its workload.
func (c *CLI) MachineStart(ctx context.Context, name string) error {
	op := fmt.Sprintf("starting smolvm machine %q", name)
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := c.run(ctx, invocation{op: op, machine: name, args: []string{"machine", "start", "--name", name}})
	return err
}

// MachineStop stops a machine; stopping a stopped machine is not an error.
func (c *CLI) MachineStop(ctx context.Context, name string) error {
	op := fmt.Sprintf("stopping smolvm machine %q", name)
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := c.run(ctx, invocation{op: op, machine: name, args: []string{"machine", "stop", "--name", name}})
	return err
}

// MachineDelete stops and removes a machine and its data dir. It stops the
// machine first: a start that was interrupted or failed can leave the VM's
// monitor (`_boot-vm`) running, which `machine stop` ends and `machine
// delete` alone does not (observed on 1.32.2). It always passes -f:
// without it smolvm prompts on stdin and exits 0 on EOF having deleted
// nothing.
func (c *CLI) MachineDelete(ctx context.Context, name string) error {
	op := fmt.Sprintf("deleting smolvm machine %q", name)
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// A stop that fails is not the end: delete says what is wrong.
	if err := c.MachineStop(ctx, name); err != nil && ctx.Err() != nil {
		return err
	}
	res, err := c.run(ctx, invocation{op: op, machine: name, args: []string{"machine", "delete", "--name", name, "-f"}})
	if err == nil && strings.Contains(string(res.stdout), "Cancelled") {
		return &CommandError{Op: op, Args: []string{"machine", "delete", "--name", name, "-f"},
			Message: "smolvm asked for confirmation and cancelled despite -f", Stderr: string(res.stderr)}
	}
	return err
}

// MachineStatus returns one machine (`machine status --json`); an unknown
// name gives ErrMachineNotFound.
func (c *CLI) MachineStatus(ctx context.Context, name string) (Machine, error) {
	op := fmt.Sprintf("reading the status of smolvm machine %q", name)
	if err := ValidateName(name); err != nil {
		return Machine{}, fmt.Errorf("%s: %w", op, err)
	}
	res, err := c.run(ctx, invocation{op: op, machine: name, args: []string{"machine", "status", "--name", name, "--json"}})
	if err != nil {
		return Machine{}, err
	}
	var m Machine
	if err := json.Unmarshal(res.stdout, &m); err != nil {
		return Machine{}, fmt.Errorf("%s: decoding `smolvm machine status --json`: %w (output: %q)", op, err, lastLines(string(res.stdout), 3))
	}
	return m, nil
}

// MachineList returns every machine smolvm knows (`machine ls --json`).
func (c *CLI) MachineList(ctx context.Context) ([]Machine, error) {
	const op = "listing smolvm machines"
	res, err := c.run(ctx, invocation{op: op, args: []string{"machine", "ls", "--json"}})
	if err != nil {
		return nil, err
	}
	ms := []Machine{}
	if err := json.Unmarshal(res.stdout, &ms); err != nil {
		return nil, fmt.Errorf("%s: decoding `smolvm machine ls --json`: %w (output: %q)", op, err, lastLines(string(res.stdout), 3))
	}
	return ms, nil
}

// MachineDataDir returns the machine's data directory on the host (it holds
// agent-console.log, the startup error log and the disks).
func (c *CLI) MachineDataDir(ctx context.Context, name string) (string, error) {
	op := fmt.Sprintf("finding the data dir of smolvm machine %q", name)
	if err := ValidateName(name); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	res, err := c.run(ctx, invocation{op: op, machine: name, args: []string{"machine", "data-dir", "--name", name}})
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(res.stdout))
	if dir == "" || strings.Contains(dir, "\n") {
		return "", fmt.Errorf("%s: unexpected output %q", op, dir)
	}
	return dir, nil
}
