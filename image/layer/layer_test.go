package layer_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/store"
)

type ent struct {
	name, link, body string
	dir              bool
}

func reg(name, body string) ent { return ent{name: name, body: body} }
func sym(name, link string) ent { return ent{name: name, link: link} }
func dir(name string) ent       { return ent{name: name, dir: true} }
func whiteout(name string) ent  { return ent{name: name, body: ""} }
func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// image puts an image made of the given layers (bottom first) into st.
func image(t *testing.T, st *store.Store, layers ...[]ent) store.Image {
	t.Helper()
	var img store.Image
	var ids []string
	for _, l := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range l {
			h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
			switch {
			case e.dir:
				h = &tar.Header{Name: e.name + "/", Mode: 0o755, Typeflag: tar.TypeDir}
			case e.link != "":
				h = &tar.Header{Name: e.name, Linkname: e.link, Mode: 0o777, Typeflag: tar.TypeSymlink}
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				io.WriteString(tw, e.body)
			}
		}
		tw.Close()
		c, err := st.PutBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		img.Layers = append(img.Layers, store.Layer{MediaType: store.MediaTypeLayer, Digest: c.Digest, Size: c.Size, DiffID: c.Digest})
		ids = append(ids, fmt.Sprintf("%q", c.Digest))
	}
	img.Config = []byte(fmt.Sprintf(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[%s]},"history":[]}`, strings.Join(ids, ",")))
	return img
}

// contents reads the bottle layer's tar: path -> header and body.
func contents(t *testing.T, st *store.Store, l store.Layer) (map[string]*tar.Header, map[string]string, []string) {
	t.Helper()
	f, err := st.Open(l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs, bodies := map[string]*tar.Header{}, map[string]string{}
	var order []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		name := "/" + strings.TrimSuffix(h.Name, "/")
		hdrs[name], bodies[name] = h, string(b)
		order = append(order, name)
	}
	return hdrs, bodies, order
}

func TestFedoraStyleSymlinkedBundle(t *testing.T) {
	st := newStore(t)
	ca := testenv.CA(t, "bottle")
	img := image(t, st, []ent{
		dir("etc"), dir("etc/pki"), dir("etc/pki/tls"), dir("etc/pki/tls/certs"),
		dir("etc/pki/ca-trust"), dir("etc/pki/ca-trust/extracted"), dir("etc/pki/ca-trust/extracted/pem"),
		reg("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "FEDORA ROOTS"),
		sym("etc/pki/tls/certs/ca-bundle.crt", "../../ca-trust/extracted/pem/tls-ca-bundle.pem"),
		dir("etc/ssl"), sym("etc/ssl/certs", "/etc/pki/tls/certs"),
	})
	res, err := layer.Build(st, "sha256:base", img, layer.Spec{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem]"; fmt.Sprint(res.Bundles) != want {
		t.Errorf("bundles %v, want %s (one real file behind every symlink)", res.Bundles, want)
	}
	hdrs, bodies, _ := contents(t, st, res.Layer)
	if got := bodies["/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"]; got != "FEDORA ROOTS\n"+string(ca) {
		t.Errorf("bundle content %q", got)
	}
	if _, ok := hdrs["/etc/pki/tls/certs/ca-bundle.crt"]; ok {
		t.Errorf("the layer replaces the symlink ca-bundle.crt")
	}
	if bodies[layer.CAFile] != string(ca) {
		t.Errorf("standalone CA file: %q", bodies[layer.CAFile])
	}
	for _, d := range []string{"/usr", "/usr/local", "/usr/local/share", "/usr/local/share/ca-certificates"} {
		if h, ok := hdrs[d]; !ok || h.Typeflag != tar.TypeDir {
			t.Errorf("missing parent directory %s", d)
		}
	}
	if _, ok := hdrs["/etc"]; ok {
		t.Errorf("the layer rewrites /etc, which the image has")
	}
}

func TestWhiteoutsAndUpperLayers(t *testing.T) {
	ca := testenv.CA(t, "bottle")
	base := []ent{dir("etc"), dir("etc/ssl"), dir("etc/ssl/certs"), reg("etc/ssl/certs/ca-certificates.crt", "OLD")}
	for _, c := range []struct {
		name  string
		upper []ent
		want  string // bundle content before the CA; "" = no bundle
	}{
		{"none", nil, "OLD\n"},
		{"overwritten", []ent{reg("etc/ssl/certs/ca-certificates.crt", "NEW")}, "NEW\n"},
		{"whiteout", []ent{whiteout("etc/ssl/certs/.wh.ca-certificates.crt")}, ""},
		{"dir whiteout", []ent{whiteout("etc/ssl/.wh.certs")}, ""},
		{"opaque", []ent{dir("etc/ssl"), whiteout("etc/ssl/.wh..wh..opq")}, ""},
		{"opaque then new", []ent{dir("etc/ssl"), whiteout("etc/ssl/.wh..wh..opq"), dir("etc/ssl/certs"), reg("etc/ssl/certs/ca-certificates.crt", "FRESH")}, "FRESH\n"},
		{"dir replaced by file", []ent{reg("etc/ssl", "not a dir")}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newStore(t)
			layers := [][]ent{base}
			if c.upper != nil {
				layers = append(layers, c.upper)
			}
			res, err := layer.Build(st, "sha256:"+c.name, image(t, st, layers...), layer.Spec{CA: ca})
			if err != nil {
				t.Fatal(err)
			}
			_, bodies, _ := contents(t, st, res.Layer)
			got, ok := bodies["/etc/ssl/certs/ca-certificates.crt"]
			if c.want == "" {
				if ok || len(res.Bundles) != 0 {
					t.Errorf("CA appended to a bundle the image does not have: %v", res.Bundles)
				}
				return
			}
			if got != c.want+string(ca) {
				t.Errorf("bundle %q, want %q + CA", got, c.want)
			}
		})
	}
}

func TestDeterministicAndCached(t *testing.T) {
	ca := testenv.CA(t, "bottle")
	spec := layer.Spec{CA: ca, Files: []layer.File{
		{Path: "/opt/bottle/b.sh", Content: []byte("#!/bin/sh\n"), Mode: 0o755},
		{Path: "/opt/bottle/a.env", Content: []byte("A=1\n"), Mode: 0o600, UID: 1000, GID: 1001},
	}}
	base := []ent{dir("etc"), dir("etc/ssl"), dir("etc/ssl/certs"), reg("etc/ssl/certs/ca-certificates.crt", "ROOTS")}
	st1, st2 := newStore(t), newStore(t)
	img1, img2 := image(t, st1, base), image(t, st2, base)
	r1, err := layer.Build(st1, "sha256:one", img1, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Same inputs, files in another order, another store: same digest.
	spec2 := spec
	spec2.Files = []layer.File{spec.Files[1], spec.Files[0]}
	r2, err := layer.Build(st2, "sha256:one", img2, spec2)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Layer.Digest != r2.Layer.Digest {
		t.Errorf("digests differ: %s %s", r1.Layer.Digest, r2.Layer.Digest)
	}
	if r1.Layer.Size > 16<<10 {
		t.Errorf("bottle layer is %d bytes", r1.Layer.Size)
	}
	hdrs, bodies, order := contents(t, st1, r1.Layer)
	if h := hdrs["/opt/bottle/a.env"]; h == nil || h.Mode != 0o600 || h.Uid != 1000 || h.Gid != 1001 || bodies["/opt/bottle/a.env"] != "A=1\n" {
		t.Errorf("a.env: %+v", h)
	}
	if h := hdrs["/opt/bottle/b.sh"]; h == nil || h.Mode != 0o755 {
		t.Errorf("b.sh: %+v", h)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] > order[i] {
			t.Errorf("entries not sorted: %v", order)
		}
	}
	// Cached: found again without reading the base image (its layer blob
	// is gone now).
	if _, err := st1.Delete(img1.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
	r3, err := layer.Build(st1, "sha256:one", img1, spec)
	if err != nil || r3.Layer.Digest != r1.Layer.Digest {
		t.Errorf("cached build: %v %v", r3.Layer.Digest, err)
	}
	// A different base ID is another cache entry, which needs the image.
	if _, err := layer.Build(st1, "sha256:two", img1, spec); err == nil {
		t.Errorf("build for another base did not read the image")
	}

	// Add appends the layer and a history entry to the config.
	out, _, err := layer.Add(st2, "sha256:one", img2, spec)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := out.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cf.RootFS.DiffIDs); n != 2 || cf.RootFS.DiffIDs[1] != r1.Layer.DiffID || len(cf.History) != 1 || len(out.Layers) != 2 {
		t.Errorf("config after Add: %+v", cf.RootFS)
	}
}

func TestScratchImageAndBadSpecs(t *testing.T) {
	st := newStore(t)
	img := image(t, st, []ent{reg("app", "binary")})
	ca := testenv.CA(t, "bottle")
	res, err := layer.Build(st, "sha256:scratch", img, layer.Spec{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bundles) != 0 {
		t.Errorf("bundles in a scratch image: %v", res.Bundles)
	}
	_, bodies, _ := contents(t, st, res.Layer)
	if bodies[layer.CAFile] != string(ca) {
		t.Errorf("no standalone CA in a scratch image")
	}

	linked := image(t, st, []ent{sym("opt", "/srv"), dir("srv")})
	if _, err := layer.Build(st, "sha256:linked", linked, layer.Spec{Files: []layer.File{{Path: "/opt/x", Mode: 0o644}}}); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("file under a symlinked dir: %v", err)
	}
	for _, spec := range []layer.Spec{
		{CA: []byte("not pem")},
		{Files: []layer.File{{Path: "relative", Mode: 0o644}}},
		{Files: []layer.File{{Path: "/a/../b", Mode: 0o644}}},
		{Files: []layer.File{{Path: "/", Mode: 0o644}}},
		{Files: []layer.File{{Path: "/x", Mode: 0o644}, {Path: "/x", Mode: 0o644}}},
		{Files: []layer.File{{Path: layer.CAFile, Mode: 0o644}}},
		{Files: []layer.File{{Path: "/x", Mode: 0o4755}}},
		{Files: []layer.File{{Path: "/x", Mode: 0o644, UID: -1}}},
		{Files: []layer.File{{Path: "/etc/.wh.x", Mode: 0o644}}},
	} {
		if err := spec.Validate(); err == nil {
			t.Errorf("spec %+v accepted", spec.Files)
		}
	}
}

func TestBundleFile(t *testing.T) {
	st := newStore(t)
	ca := testenv.CA(t, "bottle")
	with := image(t, st, []ent{dir("etc"), dir("etc/ssl"), dir("etc/ssl/certs"), reg("etc/ssl/certs/ca-certificates.crt", "DEBIAN ROOTS\n")})
	without := image(t, st, []ent{dir("bin"), reg("bin/x", "x")})
	spec := layer.Spec{CA: ca, BundleFile: "/etc/docker-bottle/ca-bundle.pem"}
	for _, c := range []struct {
		name string
		img  store.Image
		want string
	}{{"sha256:with", with, "DEBIAN ROOTS\n" + string(ca)}, {"sha256:without", without, string(ca)}} {
		res, err := layer.Build(st, c.name, c.img, spec)
		if err != nil {
			t.Fatal(err)
		}
		_, bodies, _ := contents(t, st, res.Layer)
		if got := bodies["/etc/docker-bottle/ca-bundle.pem"]; got != c.want {
			t.Errorf("%s: bundle file %q, want %q", c.name, got, c.want)
		}
	}
	if (layer.Spec{BundleFile: "/x"}).Validate() == nil {
		t.Error("a bundle file without a CA was accepted")
	}
	if spec.Digest() == (layer.Spec{CA: ca}).Digest() {
		t.Error("the bundle file does not change the spec's digest")
	}
}

// TestOwnedDirs: the agent's workspace and home become directories owned by
// the image's user, however USER names it, keeping the image's mode where
// the image has the directory; a root image gets none; a user the image
// does not know, or a file where a directory should be, is an error.
func TestOwnedDirs(t *testing.T) {
	st := newStore(t)
	base := image(t, st, []ent{
		dir("etc"),
		reg("etc/passwd", "root:x:0:0::/root:/bin/sh\nagent:x:1000:1001::/home/agent:/bin/sh\n"),
		reg("etc/group", "root:x:0:\nstaff:x:50:\n"),
		dir("workspace"),
		reg("notadir", "x"),
	})
	withUser := func(user string) store.Image {
		img := base
		img.Config = bytes.Replace(base.Config, []byte(`"history"`), []byte(fmt.Sprintf(`"config":{"User":%q},"history"`, user)), 1)
		return img
	}
	dirs := []string{"/workspace", "/home/agent"}
	for _, tc := range []struct {
		user     string
		uid, gid int
	}{
		{"agent", 1000, 1001},
		{"1000", 1000, 1001},
		{"1000:staff", 1000, 50},
		{"agent:7", 1000, 7},
		{"2000", 2000, 2000},
	} {
		res, err := layer.Build(st, "base-"+tc.user, withUser(tc.user), layer.Spec{OwnedDirs: dirs})
		if err != nil {
			t.Fatalf("user %q: %v", tc.user, err)
		}
		hdrs, _, _ := contents(t, st, res.Layer)
		for _, d := range dirs {
			h := hdrs[d]
			if h == nil || h.Typeflag != tar.TypeDir || h.Uid != tc.uid || h.Gid != tc.gid || h.Mode != 0o755 {
				t.Errorf("user %q: %s is %+v, want a directory owned by %d:%d", tc.user, d, h, tc.uid, tc.gid)
			}
		}
		if h := hdrs["/home"]; h == nil || h.Uid != 0 || h.Typeflag != tar.TypeDir {
			t.Errorf("user %q: the parent /home is %+v, want root's directory", tc.user, h)
		}
	}

	// The home: the image's HOME, or else its user's home in /etc/passwd.
	withEnv := withUser("agent")
	withEnv.Config = bytes.Replace(withEnv.Config, []byte(`"User":"agent"`), []byte(`"User":"agent","Env":["HOME=/srv/agent-home"]`), 1)
	for _, tc := range []struct {
		img  store.Image
		home string
	}{{withUser("agent"), "/home/agent"}, {withEnv, "/srv/agent-home"}} {
		res, err := layer.Build(st, "home-"+tc.home, tc.img, layer.Spec{OwnedDirs: []string{"/workspace"}, OwnHome: true})
		if err != nil {
			t.Fatal(err)
		}
		hdrs, _, _ := contents(t, st, res.Layer)
		if h := hdrs[tc.home]; h == nil || h.Uid != 1000 || h.Typeflag != tar.TypeDir {
			t.Errorf("home %s: %+v (layer %v)", tc.home, h, hdrs)
		}
	}

	for _, user := range []string{"", "root", "0"} {
		res, err := layer.Build(st, "root-"+user, withUser(user), layer.Spec{OwnedDirs: dirs})
		if err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		if hdrs, _, _ := contents(t, st, res.Layer); hdrs["/workspace"] != nil || hdrs["/home/agent"] != nil {
			t.Errorf("user %q: a root image got owned dirs: %v", user, hdrs)
		}
	}

	// A root image runs as a stand-in user, who owns them then.
	res, err := layer.Build(st, "root-stand-in", withUser(""), layer.Spec{OwnedDirs: dirs, RootUser: "65534:65534"})
	if err != nil {
		t.Fatal(err)
	}
	if hdrs, _, _ := contents(t, st, res.Layer); hdrs["/workspace"] == nil || hdrs["/workspace"].Uid != 65534 || hdrs["/home/agent"].Gid != 65534 {
		t.Errorf("root image with a stand-in user: %v", hdrs)
	}
	if _, err := layer.Build(st, "bad-root-user", withUser(""), layer.Spec{OwnedDirs: dirs, RootUser: "nobody"}); err == nil {
		t.Error("a root user that is not uid:gid was accepted")
	}

	if _, err := layer.Build(st, "ghost", withUser("ghost"), layer.Spec{OwnedDirs: dirs}); err == nil || !strings.Contains(err.Error(), `"ghost" is not in its /etc/passwd`) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := layer.Build(st, "group", withUser("agent:nogroup"), layer.Spec{OwnedDirs: dirs}); err == nil || !strings.Contains(err.Error(), `"nogroup" is not in its /etc/group`) {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := layer.Build(st, "file", withUser("agent"), layer.Spec{OwnedDirs: []string{"/notadir"}}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file where a directory goes: %v", err)
	}
	for _, bad := range [][]string{{"/"}, {"rel"}, {"/a/../b"}, {"/w", "/w"}} {
		if _, err := layer.Build(st, "bad", withUser("agent"), layer.Spec{OwnedDirs: bad}); err == nil {
			t.Errorf("owned dirs %q accepted", bad)
		}
	}
}
