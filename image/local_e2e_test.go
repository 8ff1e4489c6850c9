//go:build e2e

package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/layer"
)

// TestLocalAddsTheBottleLayerInTheEngine: for the docker backend the
// agent image gets its bottle layer in the engine itself, on top of the
// unchanged base layers; a second call reuses the image.
func TestLocalAddsTheBottleLayerInTheEngine(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	ti := buildTestImage(t, ctx, eng, testenv.Tag(t, eng, "local"))
	p, err := image.New(eng, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.CA(t, "bottle CA")
	req := image.Request{Image: ti.tag, Bottle: layer.Spec{CA: ca, Files: []layer.File{{Path: "/etc/docker-bottle/hello", Mode: 0o644, Content: []byte("hi\n")}}}}
	res, err := p.Local(ctx, req, map[string]string{testenv.Label: "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.ImageRemove(context.Background(), res.Tag, client.ImageRemoveOptions{Force: true}) })
	if res.Reused || res.ImageID != ti.id || !strings.HasPrefix(res.Tag, image.LocalRepo+":") {
		t.Fatalf("result %+v", res)
	}
	base, _ := eng.ImageInspect(ctx, ti.id)
	got, err := eng.ImageInspect(ctx, res.Tag)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.RootFS.Layers); n != len(base.RootFS.Layers)+1 {
		t.Fatalf("%d layers, want the %d of the base plus one", n, len(base.RootFS.Layers))
	}
	for i, l := range base.RootFS.Layers {
		if got.RootFS.Layers[i] != l {
			t.Fatalf("base layer %d changed", i)
		}
	}

	// The files are in the image: read them from a container made of it.
	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: res.Tag, Labels: map[string]string{testenv.Label: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	read := func(path string) string {
		rc, err := eng.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: path})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer rc.Content.Close()
		tr := tar.NewReader(rc.Content)
		if _, err := tr.Next(); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		return string(b)
	}
	if got := read(layer.CAFile); got != string(ca) {
		t.Errorf("CA file %q", got)
	}
	if bundle := read("/etc/ssl/certs/ca-certificates.crt"); !strings.HasPrefix(bundle, string(ti.bundle)) || !bytes.Contains([]byte(bundle), ca) {
		t.Errorf("the distribution bundle lacks the original roots or the bottle CA")
	}
	if got := read("/etc/docker-bottle/hello"); got != "hi\n" {
		t.Errorf("extra file %q", got)
	}

	again, err := p.Local(ctx, req, nil)
	if err != nil || !again.Reused || again.Tag != res.Tag {
		t.Fatalf("second call: %+v %v", again, err)
	}
}
