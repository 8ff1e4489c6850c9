package backend

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/sys/user"

	"github.com/docker-bottle/docker-bottle/plan"
)

// Engine is what the backends ask of the engine: the docker backend runs
// the agent there, and every backend reads the agent image's user there.
type Engine interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, containerID string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ContainerWait(ctx context.Context, containerID string, options client.ContainerWaitOptions) client.ContainerWaitResult
	ContainerLogs(ctx context.Context, containerID string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	VolumeInspect(ctx context.Context, volumeID string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
	VolumeRemove(ctx context.Context, volumeID string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
}

// RootStandIn is the user an image that would run as root runs as.
const RootStandIn = "65534:65534"

// ResolveUser is the user the agent runs as: the image's, or RootStandIn
// when that is root however it is spelled ("", "root", "0", "00", "0:0",
// or a name that the image's /etc/passwd maps to uid 0). A name is
// resolved as the runtime would (runc uses the same library) and replaced
// by the numeric uid:gid it resolved to.
func ResolveUser(ctx context.Context, e Engine, p plan.Plan, image, spec string) (string, error) {
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
	files, err := imageFiles(ctx, e, p, image, "/etc/passwd", "/etc/group")
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
func imageFiles(ctx context.Context, e Engine, p plan.Plan, image string, paths ...string) (map[string][]byte, error) {
	res, err := e.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: []string{"/nonexistent"},
			Labels: map[string]string{plan.LabelBottle: p.Slug, plan.LabelRole: plan.RoleAgent}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return nil, err
	}
	// A scratch container: nothing of the user's is lost if it stays,
	// and its files were read already.
	defer func() {
		_, _ = e.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	}()
	files := map[string][]byte{}
	for _, path := range paths {
		cp, err := e.CopyFromContainer(ctx, res.ID, client.CopyFromContainerOptions{SourcePath: path})
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
