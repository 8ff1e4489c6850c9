// Package docker is the docker backend: the agent runs in a hardened
// container on the bottle's internal network, where the bundle is its only
// neighbour. Attach, exec and logs are docker/cli's own container commands,
// run in process with the plugin's docker CLI.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/container"
	"github.com/docker/cli/cli/streams"
	"github.com/moby/moby/api/pkg/stdcopy"
	mobycontainer "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"github.com/moby/term"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

func init() {
	backend.Register(spec.BackendDocker, func(d backend.Deps) backend.Backend { return Docker{Engine: d.Engine, CLI: d.CLI, Step: d.Step} })
}

// Docker runs the agent in a container on the engine.
type Docker struct {
	Engine backend.Engine
	// CLI is the running docker CLI, for attaching, exec and logs as the
	// docker CLI does them (raw terminal, window size, signals, exit
	// code); nil where nothing attaches.
	CLI command.Cli
	// Step prints a progress line; nil prints nothing.
	Step func(format string, args ...any)
}

var yes = true

// diskVolume is the name of one of the agent's volumes.
func diskVolume(p plan.Plan, suffix string) string { return "bottle-" + p.Slug + "-" + suffix }

// Image builds the agent image with its bottle layer into the engine.
func (d Docker) Image(ctx context.Context, pipe *image.Pipeline, req image.Request, _ string) (backend.Built, error) {
	d.step("image: building the agent image and its bottle layer")
	local, err := pipe.Local(ctx, req, map[string]string{plan.LabelRole: plan.RoleImage})
	if err != nil {
		return backend.Built{}, &backend.StepError{Step: "making the agent image", Err: err}
	}
	return backend.Built{Tag: local.Tag, CacheHit: local.Reused}, nil
}

func (d Docker) step(format string, args ...any) {
	if d.Step != nil {
		d.Step(format, args...)
	}
}

// Create makes the agent container, not started, and then records it.
func (d Docker) Create(ctx context.Context, p plan.Plan, o backend.CreateOptions) (plan.Plan, error) {
	if err := d.create(ctx, p, o); err != nil {
		return p, &backend.StepError{Step: "creating the agent container", Err: err}
	}
	return o.Record(p)
}

func (d Docker) create(ctx context.Context, p plan.Plan, o backend.CreateOptions) error {
	if p.Docker == nil {
		return fmt.Errorf("bottle %s is not planned for the docker backend", p.Slug)
	}
	img := o.Image.Tag
	insp, err := d.Engine.ImageInspect(ctx, img)
	if err != nil {
		return fmt.Errorf("agent image %s: %w", img, err)
	}
	user := ""
	if insp.Config != nil {
		user = insp.Config.User
	}
	if user, err = backend.ResolveUser(ctx, d.Engine, p, img, user); err != nil {
		return err
	}
	memory, pids := o.Memory, int64(1024)
	if memory == 0 {
		memory = 4 << 30
	}
	// The root is read-only. The agent's own disk is a volume at the
	// workspace and one at its home: they outlive a stop (as a machine's
	// disk does), weigh nothing on its memory, and go with the bottle. The
	// bottle layer made both directories its user's, which the engine
	// copies into a new volume.
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: stage.Of(p).File(stage.GuestDir),
		Target: plan.GuestDir, ReadOnly: true}}
	if p.Bundle.StageOnEngine {
		// The guest dir's volume, which bring-up made and filled through
		// the bundle.
		mounts[0] = mount.Mount{Type: mount.TypeVolume, Source: stage.Volume(p.Slug, plan.RoleGuest), Target: plan.GuestDir, ReadOnly: true}
	}
	disk := func(suffix, target string) mount.Mount {
		return mount.Mount{Type: mount.TypeVolume, Source: diskVolume(p, suffix), Target: target,
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
			return fmt.Errorf("a volume named %s exists and is not this bottle's disk: remove or rename it (`docker volume rm %s`), or run the bottle under another --name",
				m.Source, m.Source)
		}
	}
	labels := map[string]string{plan.LabelBackend: p.Backend}
	maps.Copy(labels, o.Labels)
	cfg := &mobycontainer.Config{
		Image:  img,
		User:   user,
		Env:    p.Docker.GuestEnv,
		Labels: labels,
	}
	if o.Detach {
		// As `docker run -dit`: a terminal, and a stdin that stays open
		// across attaches; no one is attached at the start.
		cfg.Tty, cfg.OpenStdin = true, true
	} else {
		// As `docker run [-it]`: the user's terminal when they have one.
		cfg.Tty, cfg.OpenStdin, cfg.StdinOnce = o.TTY, o.Interactive, o.Interactive
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = o.Interactive, true, true
	}
	if len(o.Command) > 0 {
		cfg.Entrypoint, cfg.Cmd = o.Command[:1], o.Command[1:]
	}
	_, err = d.Engine.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   p.Docker.Container,
		Config: cfg,
		HostConfig: &mobycontainer.HostConfig{
			NetworkMode:    mobycontainer.NetworkMode(p.Bundle.InternalNetwork),
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			Tmpfs:          map[string]string{"/tmp": "rw,nosuid,nodev,size=1g"},
			Mounts:         mounts,
			// Names outside the bottle resolve to nothing: the engine's
			// resolver forwards to the container's own loopback, where
			// nothing answers (no DNS side channel).
			DNS:       []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Resources: mobycontainer.Resources{Memory: memory, PidsLimit: &pids},
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
	return err
}

// Launch starts the agent container: detached in the background, else
// attached as `docker start -a [-i]` does.
func (d Docker) Launch(ctx context.Context, p plan.Plan, o backend.LaunchOptions) (backend.Exit, error) {
	if o.Detach {
		if err := d.Start(ctx, p); err != nil {
			return backend.Exit{}, &backend.StepError{Step: "starting the agent", Err: err}
		}
		return backend.Exit{Launched: true}, nil
	}
	dc, err := d.cli(o.Streams)
	if err != nil {
		return backend.Exit{}, &backend.StepError{Step: "attaching to the agent", Err: err}
	}
	// Attached, Ctrl-C belongs to the agent (the CLI passes it on), so the
	// attach must not end when ctx does.
	actx := context.WithoutCancel(ctx)
	err = container.RunStart(actx, dc, &container.StartOptions{Attach: true, OpenStdin: o.Interactive, Containers: []string{p.Docker.Container}})
	ex, err := d.exit(actx, p, err)
	ex.Launched = true
	if err != nil {
		return ex, &backend.StepError{Step: "attaching to the agent", Err: err}
	}
	return ex, nil
}

// exit reads how an attach ended: docker/cli's container commands return
// the agent's non-zero exit code as a cli.StatusError, and nil both when it
// exited 0 and when the user detached.
func (d Docker) exit(ctx context.Context, p plan.Plan, err error) (backend.Exit, error) {
	var se cli.StatusError
	if errors.As(err, &se) {
		return backend.Exit{Code: se.StatusCode}, nil
	}
	var esc term.EscapeError
	if errors.As(err, &esc) {
		// `docker attach` ends so on Ctrl-P Ctrl-Q.
		return backend.Exit{Detached: true}, nil
	}
	if err != nil {
		return backend.Exit{}, err
	}
	if d.Status(ctx, p) == backend.StateRunning {
		return backend.Exit{Detached: true}, nil
	}
	return backend.Exit{}, nil
}

// Start starts the agent container in the background.
func (d Docker) Start(ctx context.Context, p plan.Plan) error {
	if _, err := d.Engine.ContainerStart(ctx, p.Docker.Container, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the agent container: %w", err)
	}
	return nil
}

// Stop stops the agent container (10s, then killed); a missing one is
// stopped.
func (d Docker) Stop(ctx context.Context, p plan.Plan) error {
	timeout := 10
	_, err := d.Engine.ContainerStop(ctx, p.Docker.Container, client.ContainerStopOptions{Timeout: &timeout})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Attach attaches the streams to the running agent container as `docker
// attach` does. Without a terminal on the user's side, an agent with a TTY
// gets only its output attached; one without takes the piped input.
func (d Docker) Attach(ctx context.Context, p plan.Plan, o backend.AttachOptions) (backend.Exit, error) {
	dc, err := d.cli(o.Streams)
	if err != nil {
		return backend.Exit{}, err
	}
	if in := dc.In(); in.IsTerminal() && in.FD() == os.Stdin.Fd() {
		k, err := newKeys(os.Stdin)
		if err != nil {
			return backend.Exit{}, err
		}
		defer k.stop()
		// A stream over a reader that is not a file takes descriptor 0,
		// stdin's, for its raw mode; it must be told it is a terminal.
		keys := streams.NewIn(k)
		keys.SetIsTerminal(true)
		dc.in = keys
	}
	// A terminal's input cannot come from a pipe (docker refuses that):
	// without a terminal, an attach to an agent with a TTY (a detached
	// one) watches its output. An agent without a TTY takes piped input
	// as `docker attach` gives it.
	noStdin := false
	if !dc.In().IsTerminal() {
		c, err := d.Engine.ContainerInspect(ctx, p.Docker.Container, client.ContainerInspectOptions{})
		if err != nil {
			return backend.Exit{}, err
		}
		noStdin = c.Container.Config != nil && c.Container.Config.Tty
	}
	err = container.RunAttach(ctx, dc, p.Docker.Container, &container.AttachOptions{Proxy: true, NoStdin: noStdin})
	return d.exit(context.WithoutCancel(ctx), p, err)
}

// Exec runs a command in the agent container with the agent's network
// (guest.Exec) as `docker exec` does, and returns the command's exit code.
func (d Docker) Exec(ctx context.Context, p plan.Plan, o backend.ExecOptions) (int, error) {
	dc, err := d.cli(o.Streams)
	if err != nil {
		return 0, err
	}
	eo := container.NewExecOptions()
	for _, kv := range o.Env {
		if err := eo.Env.Set(kv); err != nil {
			return 0, err
		}
	}
	eo.Workdir, eo.TTY, eo.Interactive, eo.Command = o.Workdir, o.TTY, o.Interactive, guest.Exec(o.Command)
	err = container.RunExec(ctx, dc, p.Docker.Container, eo)
	var se cli.StatusError
	if errors.As(err, &se) {
		return se.StatusCode, nil
	}
	return 0, err
}

// Logs writes the agent container's logs as `docker logs` does.
func (d Docker) Logs(ctx context.Context, p plan.Plan, o backend.LogsOptions) (int, error) {
	c, err := d.Engine.ContainerInspect(ctx, p.Docker.Container, client.ContainerInspectOptions{})
	if err != nil {
		return 0, err
	}
	r, err := d.Engine.ContainerLogs(ctx, c.Container.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true,
		Since: o.Since, Until: o.Until, Timestamps: o.Timestamps, Follow: o.Follow, Tail: o.Tail})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if c.Container.Config != nil && c.Container.Config.Tty {
		_, err = io.Copy(o.Stdout, r)
	} else {
		_, err = stdcopy.StdCopy(o.Stdout, o.Stderr, r)
	}
	return 0, err
}

// Status is the agent container's state.
func (d Docker) Status(ctx context.Context, p plan.Plan) string {
	res, err := d.Engine.ContainerInspect(ctx, p.Docker.Container, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return backend.StateMissing
	}
	return string(res.Container.State.Status)
}

// Remove removes the agent container and its disk.
func (d Docker) Remove(ctx context.Context, p plan.Plan) error {
	var errs []error
	if _, err := d.Engine.ContainerRemove(ctx, p.Docker.Container, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, err)
	}
	for _, suffix := range []string{"workspace", "home"} {
		if _, err := d.Engine.VolumeRemove(ctx, diskVolume(p, suffix), client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Objects are the agent container, the internal network it shares with
// the bundle, and its disk's volumes.
func (d Docker) Objects(p plan.Plan) []backend.Object {
	return []backend.Object{{Kind: "container", Name: p.Docker.Container, Role: "agent"},
		{Kind: "network", Name: p.Bundle.InternalNetwork, Role: "internal network"},
		{Kind: "volume", Name: diskVolume(p, "workspace"), Role: "disk"}, {Kind: "volume", Name: diskVolume(p, "home"), Role: "disk"}}
}

// Describe names the agent container.
func (d Docker) Describe(p plan.Plan) (string, string) { return "container", p.Docker.Container }

// HostAddr is the internal network's gateway: the host's address on it.
func (d Docker) HostAddr(p plan.Plan) netip.Addr {
	return plan.NewSubnet(p.Bundle.InternalSubnet).Gateway
}

// cli is the docker CLI with the given streams in place of its own (nil:
// its own), for docker/cli's container commands, which use the CLI's.
func (d Docker) cli(s backend.Streams) (withStreams, error) {
	if d.CLI == nil {
		return withStreams{}, errors.New("no docker CLI to attach with")
	}
	c := withStreams{Cli: d.CLI, in: d.CLI.In(), out: d.CLI.Out(), err: d.CLI.Err()}
	if s.Stdin != nil && s.Stdin != io.Reader(c.in) {
		c.in = streams.NewIn(readCloser(s.Stdin))
	}
	if s.Stdout != nil && s.Stdout != io.Writer(c.out) {
		c.out = outStream(s.Stdout)
	}
	if s.Stderr != nil && s.Stderr != io.Writer(c.err) {
		c.err = outStream(s.Stderr)
	}
	return c, nil
}

// withStreams is a docker CLI with other streams.
type withStreams struct {
	command.Cli
	in       *streams.In
	out, err *streams.Out
}

func (c withStreams) In() *streams.In   { return c.in }
func (c withStreams) Out() *streams.Out { return c.out }
func (c withStreams) Err() *streams.Out { return c.err }

func outStream(w io.Writer) *streams.Out {
	if o, ok := w.(*streams.Out); ok {
		return o
	}
	return streams.NewOut(w)
}

func readCloser(r io.Reader) io.ReadCloser {
	if in, ok := r.(*streams.In); ok {
		return in
	}
	if f, ok := r.(*os.File); ok {
		return f
	}
	return io.NopCloser(r)
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

// ExitCode is the exit code of the agent's container once it ended.
func (d Docker) ExitCode(ctx context.Context, p plan.Plan) (int, bool) {
	res, err := d.Engine.ContainerInspect(ctx, p.Docker.Container, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || res.Container.State.Running || res.Container.State.Status == "created" {
		return 0, false
	}
	return res.Container.State.ExitCode, true
}
