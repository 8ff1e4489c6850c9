package backend

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// imageEngine is an engine holding one image with the given files; it
// records the containers made and removed.
type imageEngine struct {
	Engine
	files            map[string]string
	created, removed int
}

func (e *imageEngine) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	e.created++
	return client.ContainerCreateResult{ID: "lookup"}, nil
}

func (e *imageEngine) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.removed++
	return client.ContainerRemoveResult{}, nil
}

func (e *imageEngine) CopyFromContainer(ctx context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	content, ok := e.files[o.SourcePath]
	if !ok {
		return client.CopyFromContainerResult{}, cerrdefs.ErrNotFound
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: o.SourcePath[strings.LastIndexByte(o.SourcePath, '/')+1:], Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	return client.CopyFromContainerResult{Content: io.NopCloser(&b)}, nil
}

// TestAgentUserIsNeverRoot: however an image spells root, the agent runs
// as the stand-in; any other user runs as the numeric uid:gid the runtime
// would resolve it to.
func TestAgentUserIsNeverRoot(t *testing.T) {
	eng := &imageEngine{files: map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nagent:x:1000:1001::/home/agent:/bin/sh\n",
		"/etc/group":  "root:x:0:\nagents:x:1001:\nwheel:x:10:agent\n",
	}}
	p := plan.Plan{Slug: "u"}
	for _, c := range []struct{ user, want string }{
		{"", RootStandIn},
		{"root", RootStandIn},
		{"0", RootStandIn},
		{"00", RootStandIn},
		{"0000", RootStandIn},
		{"+0", RootStandIn},
		{"0:0", RootStandIn},
		{"0:1000", RootStandIn},
		{"root:agents", RootStandIn},
		{"toor", RootStandIn}, // a name that is uid 0 in the image
		{"1000", "1000"},
		{"1000:1000", "1000:1000"},
		{"agent", "1000:1001"},
		{"agent:wheel", "1000:10"},
		{"1000:wheel", "1000:wheel"},
	} {
		got, err := ResolveUser(context.Background(), eng, p, "img", c.user)
		if err != nil || got != c.want {
			t.Errorf("USER %q: runs as %q (%v), want %q", c.user, got, err, c.want)
		}
	}
	if _, err := ResolveUser(context.Background(), eng, p, "img", "ghost"); err == nil || !strings.Contains(err.Error(), "numeric uid:gid") {
		t.Errorf("a user the image does not have: %v", err)
	}
	if eng.created == 0 || eng.created != eng.removed {
		t.Errorf("lookup containers: %d made, %d removed", eng.created, eng.removed)
	}
	// An image without /etc/passwd: a name cannot be told from root.
	if _, err := ResolveUser(context.Background(), &imageEngine{files: map[string]string{}}, p, "img", "agent"); err == nil {
		t.Error("a named user was accepted from an image without /etc/passwd")
	}
}
