package push_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/push"
	"github.com/docker-bottle/docker-bottle/image/store"
)

// testImage puts a two-layer image (random, incompressible-ish file plus a
// text file) into st.
func testImage(t *testing.T, st *store.Store) store.Image {
	t.Helper()
	var layers []store.Layer
	var diffIDs []string
	for i, size := range []int{256 << 10, 4 << 10} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := make([]byte, size)
		if i == 0 {
			_, _ = rand.Read(body[:size/2]) // half random, half zeros
		} else {
			copy(body, strings.Repeat("text ", size/5))
		}
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
		tw.Close()
		c, err := st.PutBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, store.Layer{MediaType: store.MediaTypeLayer, Digest: c.Digest, Size: c.Size, DiffID: c.Digest})
		diffIDs = append(diffIDs, fmt.Sprintf("%q", c.Digest.String()))
	}
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}`, strings.Join(diffIDs, ","))
	img := store.Image{Config: []byte(cfg), Layers: layers}
	if _, err := st.PutBytes(img.Config); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushToUserRegistryWithCredentialHelper(t *testing.T) {
	ctx := context.Background()
	host := testenv.AuthRegistry(t, "alice", "s3cret")
	cfg := testenv.DockerConfig(t, `{"credsStore":"bottletest"}`, testenv.Helper{Name: "bottletest", Server: host, Username: "alice", Secret: "s3cret"})
	kc := push.Keychain(cfg)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, st)

	res, err := push.Image(ctx, st, img, host+"/team/agent:v1", push.Options{Keychain: kc, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobBytesSent == 0 {
		t.Fatal("first push sent no blob bytes")
	}
	if res.Ref.String() != host+"/team/agent@"+res.Digest.String() {
		t.Errorf("result ref %s", res.Ref)
	}
	// Pull it back with the same credentials: gzip layers with the
	// original diff IDs, the same config.
	ref, err := name.ParseReference(host + "/team/agent:v1")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != res.Digest {
		t.Errorf("tag v1 is %s, pushed %s", d, res.Digest)
	}
	if cn, _ := pulled.ConfigName(); cn != img.ConfigDigest() {
		t.Errorf("config %s, want %s", cn, img.ConfigDigest())
	}
	ls, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var compressed int64
	for i, l := range ls {
		mt, _ := l.MediaType()
		diffID, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if mt != store.MediaTypeLayerGzip || diffID != img.Layers[i].DiffID {
			t.Errorf("layer %d: %s diff ID %s, want gzip with %s", i, mt, diffID, img.Layers[i].DiffID)
		}
		size, _ := l.Size()
		compressed += size
		// Reading the layer checks its digest and gzip stream.
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		if img.Layers[i].Digest != mustDigest(t, buf.Bytes()) {
			t.Errorf("layer %d content differs after the round trip", i)
		}
	}
	if compressed >= img.Layers[0].Size+img.Layers[1].Size {
		t.Errorf("compressed layers (%d bytes) are not smaller than the originals", compressed)
	}

	// Again: the registry has every blob, nothing is sent.
	res2, err := push.Image(ctx, st, img, host+"/team/agent:v2", push.Options{Keychain: kc, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.BlobBytesSent != 0 || res2.Digest != res.Digest {
		t.Errorf("second push sent %d blob bytes, digest %s (first %s)", res2.BlobBytesSent, res2.Digest, res.Digest)
	}

	user, pass, err := push.BasicCredentials(kc, host)
	if err != nil || user != "alice" || pass != "s3cret" {
		t.Errorf("BasicCredentials: %q %q %v", user, pass, err)
	}
}

func TestPushWrongCredentials(t *testing.T) {
	ctx := context.Background()
	host := testenv.AuthRegistry(t, "alice", "s3cret")
	cfg := testenv.DockerConfig(t, fmt.Sprintf(`{"credHelpers":{%q:"bottlewrong"}}`, host),
		testenv.Helper{Name: "bottlewrong", Server: host, Username: "alice", Secret: "not-the-password"})
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = push.Image(ctx, st, testImage(t, st), host+"/team/agent:v1", push.Options{Keychain: push.Keychain(cfg)})
	if err == nil {
		t.Fatal("push with wrong credentials succeeded")
	}
	for _, want := range []string{"refused the credentials", "docker login " + host} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestBasicCredentialsTokenOnly(t *testing.T) {
	cfg := testenv.DockerConfig(t, `{"auths":{"registry.example.com":{"identitytoken":"opaque-refresh-token"}}}`)
	_, _, err := push.BasicCredentials(push.Keychain(cfg), "registry.example.com")
	if !errors.Is(err, push.ErrTokenOnly) || !strings.Contains(err.Error(), "smolvm only supports basic username/password") {
		t.Errorf("identity token: %v", err)
	}
	cfg = testenv.DockerConfig(t, `{"auths":{"registry.example.com":{"auth":"Ym9iOmh1bnRlcjI="}}}`)
	if u, p, err := push.BasicCredentials(push.Keychain(cfg), "registry.example.com"); err != nil || u != "bob" || p != "hunter2" {
		t.Errorf("auth field: %q %q %v", u, p, err)
	}
	if u, p, err := push.BasicCredentials(push.Keychain(cfg), "other.example.com"); err != nil || u != "" || p != "" {
		t.Errorf("no credentials: %q %q %v", u, p, err)
	}
}

func mustDigest(t *testing.T, b []byte) v1.Hash {
	t.Helper()
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
