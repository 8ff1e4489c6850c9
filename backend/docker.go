// Package backend launches and manages the agent of a bottle where it runs:
// a smolvm microVM, or a hardened container on the engine.
package backend

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/moby/sys/user"

	"github.com/docker-bottle/docker-bottle/internal/dockercli"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// DockerEngine is what the docker backend asks of the engine.
type DockerEngine interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ContainerWait(ctx context.Context, containerID string, options client.ContainerWaitOptions) client.ContainerWaitResult
	VolumeInspect(ctx context.Context, volumeID string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
}

// Docker runs the agent in a hardened container on the bottle's internal
// network, where the bundle is its only neighbour.
type Docker struct {
	Engine DockerEngine
	// CLI is the running docker CLI's endpoint, for attaching through the
	// docker CLI itself (raw terminal, window size, signals, exit code).
	CLI dockercli.Endpoint
}

// LaunchOptions say what the agent runs and how.
type LaunchOptions struct {
	Image string
	// Command replaces the image's entrypoint and command.
	Command     []string
	TTY         bool
	Interactive bool
	// Memory and PidsLimit bound the agent (0: defaults).
	Memory    int64
	PidsLimit int64
	Labels    map[string]string
}

var yes = true

// RootStandIn is the user an image that would run as root runs as.
const RootStandIn = "65534:65534"

// Create makes the agent container, not started.
func (d Docker) Create(ctx context.Context, p plan.Plan, o LaunchOptions) (string, error) {
	if p.Docker == nil {
		return "", fmt.Errorf("bottle %s is not planned for the docker backend", p.Slug)
	}
	insp, err := d.Engine.ImageInspect(ctx, o.Image)
	if err != nil {
		return "", fmt.Errorf("agent image %s: %w", o.Image, err)
	}
	user := ""
	if insp.Config != nil {
		user = insp.Config.User
	}
	if user, err = d.ResolveUser(ctx, p, o.Image, user); err != nil {
		return "", err
	}
	memory, pids := o.Memory, o.PidsLimit
	if memory == 0 {
		memory = 4 << 30
	}
	if pids == 0 {
		pids = 1024
	}
	// The root is read-only. The agent's own disk is a volume at the
	// workspace and one at its home: they outlive a stop (as a machine's
	// disk does), weigh nothing on its memory, and go with the bottle. The
	// bottle layer made both directories its user's, which the engine
	// copies into a new volume.
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: filepath.Join(p.StageDir, plan.StageGuestDir),
		Target: plan.GuestDir, ReadOnly: true}}
	disk := func(suffix, target string) mount.Mount {
		return mount.Mount{Type: mount.TypeVolume, Source: "bottle-" + p.Slug + "-" + suffix, Target: target,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: plan.RoleDisk}}}
	}
	mounts = append(mounts, disk("workspace", plan.GuestWorkspace))
	var imageEnv []string
	if insp.Config != nil {
		imageEnv = insp.Config.Env
	}
	if home := imageHome(imageEnv); home != "" && home != "/" && home != plan.GuestWorkspace {
		mounts = append(mounts, disk("home", home))
	}
	// A volume of that name that is not this bottle's (the user's own, or
	// another bottle's) would be mounted as it is: the agent would get
	// someone else's files, and rm would leave it.
	for _, m := range mounts[1:] {
		v, err := d.Engine.VolumeInspect(ctx, m.Source, client.VolumeInspectOptions{})
		if err == nil && v.Volume.Labels[plan.LabelBottle] != p.Slug {
			return "", fmt.Errorf("a volume named %s exists and is not this bottle's disk: remove or rename it (`docker volume rm %s`), or run the bottle under another --name",
				m.Source, m.Source)
		}
	}
	cfg := &container.Config{
		Image:       o.Image,
		User:        user,
		Env:         p.Docker.GuestEnv,
		Labels:      o.Labels,
		Tty:         o.TTY,
		OpenStdin:   o.Interactive,
		StdinOnce:   o.Interactive,
		AttachStdin: o.Interactive, AttachStdout: true, AttachStderr: true,
	}
	if len(o.Command) > 0 {
		cfg.Entrypoint, cfg.Cmd = o.Command[:1], o.Command[1:]
	}
	res, err := d.Engine.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   p.Docker.Container,
		Config: cfg,
		HostConfig: &container.HostConfig{
			NetworkMode:    container.NetworkMode(p.Bundle.InternalNetwork),
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			Tmpfs:          map[string]string{"/tmp": "rw,nosuid,nodev,size=1g"},
			Mounts:         mounts,
			// Names outside the bottle resolve to nothing: the engine's
			// resolver forwards to the container's own loopback, where
			// nothing answers (no DNS side channel).
			DNS:       []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Resources: container.Resources{Memory: memory, PidsLimit: &pids},
			// An init as PID 1 passes signals on, so Ctrl-C reaches the
			// agent as with `docker run --init`.
			Init: &yes,
			// The internal network is IPv4 only, but engines before 26.0.2
			// give every interface an IPv6 link-local address
			// (CVE-2024-32473), and the bridge's fe80:: address is not
			// covered by inhibit_ipv4: the agent gets no IPv6 at all.
			Sysctls: map[string]string{"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"},
		},
	})
	if err != nil {
		return "", fmt.Errorf("creating the agent container: %w", err)
	}
	return res.ID, nil
}

// Attach starts the agent container and attaches the user's terminal to
// it through the docker CLI, which handles raw mode, window size and
// signals as `docker start -ai` does; it returns the agent's exit code.
func (d Docker) Attach(ctx context.Context, p plan.Plan, interactive bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	docker, err := dockercli.Path()
	if err != nil {
		return 0, fmt.Errorf("finding the docker CLI to attach with: %w", err)
	}
	env, cleanup, err := dockercli.EndpointEnv(d.CLI)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	args := []string{"start", "-a"}
	if interactive {
		args = append(args, "-i")
	}
	cmd := exec.CommandContext(ctx, docker, append(args, p.Docker.Container)...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = dockercli.InFile(stdin), dockercli.OutFile(stdout), dockercli.OutFile(stderr)
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		// The CLI exits with the container's code; make sure it was the
		// container's and not the CLI failing.
		if code, ierr := d.exitCode(context.WithoutCancel(ctx), p); ierr == nil {
			return code, nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return d.exitCode(ctx, p)
}

// ExecOptions say how `docker bottle exec` runs a command next to the
// agent.
type ExecOptions struct {
	Command []string
	// Env are the user's variables: KEY=VALUE, or KEY for the caller's
	// value.
	Env         []string
	Workdir     string
	TTY         bool
	Interactive bool
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
}

// Exec runs a command in the agent container with the agent's network
// (guest.Exec) through the docker CLI, which handles the terminal as
// `docker exec` does, and returns the command's exit code.
func (d Docker) Exec(ctx context.Context, p plan.Plan, o ExecOptions) (int, error) {
	docker, err := dockercli.Path()
	if err != nil {
		return 0, fmt.Errorf("finding the docker CLI to exec with: %w", err)
	}
	env, cleanup, err := dockercli.EndpointEnv(d.CLI)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	args := []string{"exec"}
	if o.Interactive {
		args = append(args, "-i")
	}
	if o.TTY {
		args = append(args, "-t")
	}
	for _, kv := range o.Env {
		args = append(args, "-e", kv)
	}
	if o.Workdir != "" {
		args = append(args, "-w", o.Workdir)
	}
	args = append(append(args, p.Docker.Container), guest.Exec(o.Command)...)
	cmd := exec.CommandContext(ctx, docker, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = dockercli.InFile(o.Stdin), dockercli.OutFile(o.Stdout), dockercli.OutFile(o.Stderr)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// Start starts the agent container in the background.
func (d Docker) Start(ctx context.Context, p plan.Plan) error {
	if _, err := d.Engine.ContainerStart(ctx, p.Docker.Container, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the agent container: %w", err)
	}
	return nil
}

// exitCode waits (boundedly) for the agent container to stop: the attached
// CLI returns when the agent's streams close, a moment before the engine
// records the exit.
func (d Docker) exitCode(ctx context.Context, p plan.Plan) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w := d.Engine.ContainerWait(ctx, p.Docker.Container, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		return int(r.StatusCode), nil
	case err := <-w.Error:
		return 0, fmt.Errorf("waiting for the agent container: %w", err)
	}
}

// imageHome is the HOME the image's config sets, if any.
func imageHome(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			return v
		}
	}
	return ""
}

// ResolveUser is the user the agent runs as: the image's, or RootStandIn
// when that is root however it is spelled ("", "root", "0", "00", "0:0",
// or a name that the image's /etc/passwd maps to uid 0). A name is
// resolved as the runtime would (runc uses the same library) and replaced
// by the numeric uid:gid it resolved to.
func (d Docker) ResolveUser(ctx context.Context, p plan.Plan, image, spec string) (string, error) {
	if spec == "" {
		return RootStandIn, nil
	}
	name, _, _ := strings.Cut(spec, ":")
	if uid, err := strconv.Atoi(name); err == nil {
		// A number is a uid whatever the image's passwd says.
		if uid == 0 {
			return RootStandIn, nil
		}
		return spec, nil
	}
	files, err := d.imageFiles(ctx, p, image, "/etc/passwd", "/etc/group")
	if err != nil {
		return "", fmt.Errorf("the agent image %s runs as %q, and its /etc/passwd could not be read to tell whether that is root: %w; set USER to a numeric uid:gid in its Dockerfile", image, spec, err)
	}
	var passwd, group io.Reader
	if b, ok := files["/etc/passwd"]; ok {
		passwd = bytes.NewReader(b)
	}
	if b, ok := files["/etc/group"]; ok {
		group = bytes.NewReader(b)
	}
	u, err := user.GetExecUser(spec, nil, passwd, group)
	if err != nil {
		return "", fmt.Errorf("the agent image %s runs as %q, which its /etc/passwd and /etc/group do not resolve: %w; set USER to a numeric uid:gid in its Dockerfile", image, spec, err)
	}
	if u.Uid == 0 {
		return RootStandIn, nil
	}
	return fmt.Sprintf("%d:%d", u.Uid, u.Gid), nil
}

// imageFiles reads files of an image through a container made from it and
// never started; a file the image lacks is left out.
func (d Docker) imageFiles(ctx context.Context, p plan.Plan, image string, paths ...string) (map[string][]byte, error) {
	res, err := d.Engine.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: []string{"/nonexistent"},
			Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: plan.RoleAgent}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return nil, err
	}
	defer d.Engine.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	files := map[string][]byte{}
	for _, path := range paths {
		cp, err := d.Engine.CopyFromContainer(ctx, res.ID, client.CopyFromContainerOptions{SourcePath: path})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		b, err := regularFile(cp.Content, path)
		cp.Content.Close()
		if err != nil {
			return nil, err
		}
		files[path] = b
	}
	return files, nil
}

// regularFile is the content of the one regular file of a tar stream, of
// at most 4 MiB.
func regularFile(r io.Reader, path string) ([]byte, error) {
	const limit = 4 << 20
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if h.Size > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return io.ReadAll(io.LimitReader(tr, limit))
}
