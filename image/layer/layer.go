// Package layer makes the bottle layer: one small layer added on top of the
// agent image with go-containerregistry types, without a rebuild. It puts the
// bottle CA into the image's trust store (appended to the distribution's CA
// bundle when the image has one, plus a standalone file) and adds the
// in-guest files a run needs. The same inputs always give the same layer
// (same digest), and the layer is cached per base image.
package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/docker-bottle/docker-bottle/image/store"
)

// CAFile is where the bottle CA is written as a file of its own. It is the
// directory Debian's and Alpine's update-ca-certificates read, so a later
// update inside the guest keeps the CA, and a fixed path the guest env can
// name (NODE_EXTRA_CA_CERTS, for example).
const CAFile = "/usr/local/share/ca-certificates/docker-bottle.crt"

// Bundles are the CA bundle files of common distributions (the list Go's
// crypto/x509 reads on Linux). The CA is appended to each one the image has,
// following symlinks inside the image.
var Bundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine, Arch, Gentoo
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
	"/etc/ssl/cert.pem",                                 // Alpine
}

// File is an in-guest file the bottle layer adds.
type File struct {
	Path    string      `json:"path"`
	Content []byte      `json:"content"`
	Mode    fs.FileMode `json:"mode"`
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
}

// Spec is what goes into the bottle layer.
type Spec struct {
	// CA is the bottle CA certificate, PEM.
	CA    []byte
	Files []File
	// BundleFile, when set, is a path where the layer writes one bundle of
	// the image's own roots (its first CA bundle) followed by the CA, or
	// the CA alone when the image has no bundle: a fixed path for
	// SSL_CERT_FILE and friends, which take one file.
	BundleFile string
	// OwnedDirs are directories the agent writes (its workspace, its
	// home): the layer makes each one owned by the image's user, so that a
	// volume mounted there starts out owned by that user (the engine gives
	// an empty volume the owner and mode of the image's directory). Nothing
	// is added when the image runs as root.
	OwnedDirs []string
	// OwnHome adds the image's home to OwnedDirs: its HOME variable, or its
	// user's home in /etc/passwd, unless that is /.
	OwnHome bool
	// RootUser ("uid:gid", numbers) owns those directories when the image
	// runs as root: the user the bottle runs such an image as.
	RootUser string
}

// Result describes a bottle layer.
type Result struct {
	Layer store.Layer `json:"layer"`
	// Bundles are the CA bundle files (after symlinks) the CA was
	// appended to; empty when the image has none.
	Bundles []string `json:"bundles"`
}

// formatVersion changes whenever this package changes what it writes, so
// cached layers of an older plugin are not reused.
const formatVersion = "bottle-layer/1"

// maxFile bounds one file's content and a CA bundle read from the image.
const maxFile = 16 << 20

// epoch is the modification time of every entry: a fixed time keeps the
// layer's digest a function of its inputs only.
var epoch = time.Unix(0, 0).UTC()

// Validate checks the spec.
func (s Spec) Validate() error {
	if len(bytes.TrimSpace(s.CA)) > 0 {
		block, _ := pem.Decode(s.CA)
		if block == nil || block.Type != "CERTIFICATE" {
			return errors.New("bottle layer: the CA is not a PEM certificate")
		}
	}
	if s.BundleFile != "" && (!path.IsAbs(s.BundleFile) || path.Clean(s.BundleFile) != s.BundleFile || len(s.CA) == 0) {
		return fmt.Errorf("bottle layer: bundle file %q must be an absolute clean path, and needs the CA", s.BundleFile)
	}
	if s.RootUser != "" {
		u, g, ok := strings.Cut(s.RootUser, ":")
		if _, err := strconv.Atoi(u); err != nil || !ok {
			return fmt.Errorf("bottle layer: root user %q is not uid:gid", s.RootUser)
		}
		if _, err := strconv.Atoi(g); err != nil {
			return fmt.Errorf("bottle layer: root user %q is not uid:gid", s.RootUser)
		}
	}
	seen := map[string]bool{s.BundleFile: s.BundleFile != ""}
	for _, d := range s.OwnedDirs {
		if !path.IsAbs(d) || path.Clean(d) != d || d == "/" || strings.Contains(d, "/.wh.") {
			return fmt.Errorf("bottle layer: directory %q must be an absolute clean path other than /", d)
		}
		if seen[d] {
			return fmt.Errorf("bottle layer: %s is given twice", d)
		}
		seen[d] = true
	}
	for _, f := range s.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("bottle layer: file path %q must be absolute and clean", f.Path)
		}
		if strings.Contains(f.Path, "/.wh.") {
			return fmt.Errorf("bottle layer: file path %q uses the reserved whiteout prefix", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("bottle layer: file %s is given twice", f.Path)
		}
		seen[f.Path] = true
		if f.Path == CAFile || (len(s.CA) > 0 && slices.Contains(Bundles, f.Path)) {
			return fmt.Errorf("bottle layer: file %s is where the bottle CA goes", f.Path)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("bottle layer: file %s: only permission bits are allowed in its mode (%v)", f.Path, f.Mode)
		}
		if f.UID < 0 || f.GID < 0 {
			return fmt.Errorf("bottle layer: file %s: negative uid or gid", f.Path)
		}
		if len(f.Content) > maxFile {
			return fmt.Errorf("bottle layer: file %s is larger than %d bytes", f.Path, maxFile)
		}
	}
	return nil
}

// Digest identifies the spec's content.
func (s Spec) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nca %d\n", formatVersion, len(s.CA))
	h.Write(s.CA)
	if s.BundleFile != "" {
		fmt.Fprintf(h, "bundle file %q\n", s.BundleFile)
	}
	files := slices.Clone(s.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range files {
		sum := sha256.Sum256(f.Content)
		fmt.Fprintf(h, "file %q %o %d %d %x\n", f.Path, f.Mode, f.UID, f.GID, sum)
	}
	dirs := slices.Clone(s.OwnedDirs)
	slices.Sort(dirs)
	for _, d := range dirs {
		fmt.Fprintf(h, "owned dir %q\n", d)
	}
	if s.OwnHome {
		fmt.Fprintf(h, "owned home\n")
	}
	if s.RootUser != "" {
		fmt.Fprintf(h, "root user %q\n", s.RootUser)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const recordKind = "bottle-layers"

// Add returns base with the bottle layer on top. baseID names the base image
// content (its engine image ID or config digest) for the cache: a layer made
// once for that base and spec is reused without reading the image again.
func Add(st *store.Store, baseID string, base store.Image, spec Spec) (store.Image, Result, error) {
	res, err := Build(st, baseID, base, spec)
	if err != nil {
		return store.Image{}, Result{}, err
	}
	img, err := base.Append(res.Layer, v1.History{
		Created:   v1.Time{Time: epoch},
		CreatedBy: "docker bottle: bottle CA and in-guest files",
		Comment:   formatVersion,
	})
	if err != nil {
		return store.Image{}, Result{}, fmt.Errorf("bottle layer: %w", err)
	}
	return img, res, nil
}

// CacheKey is the name under which the layer for baseID and spec is cached.
func CacheKey(baseID string, spec Spec) string {
	sum := sha256.Sum256([]byte(formatVersion + "\n" + baseID + "\n" + spec.Digest()))
	return hex.EncodeToString(sum[:])
}

// Cached returns the cached bottle layer for baseID and spec, if the store
// holds it.
func Cached(st *store.Store, baseID string, spec Spec) (Result, bool) {
	var res Result
	if err := st.ReadRecord(recordKind, CacheKey(baseID, spec), &res); err != nil || !st.Has(res.Layer.Digest) {
		return Result{}, false
	}
	return res, true
}

// Build makes (or finds in the cache) the bottle layer for base and stores
// it as a blob.
func Build(st *store.Store, baseID string, base store.Image, spec Spec) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	if res, ok := Cached(st, baseID, spec); ok {
		return res, nil
	}
	tarball, bundles, err := build(st, base, spec)
	if err != nil {
		return Result{}, err
	}
	c, err := st.PutBytes(tarball)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Layer:   store.Layer{MediaType: store.MediaTypeLayer, Digest: c.Digest, Size: c.Size, DiffID: c.Digest},
		Bundles: bundles,
	}
	if err := st.WriteRecord(recordKind, CacheKey(baseID, spec), res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// entryOut is one entry of the layer being written.
type entryOut struct {
	hdr     tar.Header
	content []byte
}

func build(st *store.Store, base store.Image, spec Spec) ([]byte, []string, error) {
	ca := spec.CA
	if len(ca) > 0 && ca[len(ca)-1] != '\n' {
		ca = append(slices.Clone(ca), '\n')
	}
	// What the layer writes, before parent directories are known.
	var outs []entryOut
	targets := []string{}
	for _, f := range spec.Files {
		targets = append(targets, f.Path)
	}
	if len(ca) > 0 {
		targets = append(targets, CAFile)
	}
	if spec.BundleFile != "" {
		targets = append(targets, spec.BundleFile)
	}
	ownedPaths := slices.Clone(spec.OwnedDirs)
	if spec.OwnHome {
		if home := envHome(base); home != "" && !slices.Contains(ownedPaths, home) {
			ownedPaths = append(ownedPaths, home)
		}
	}
	targets = append(targets, ownedPaths...)
	fsys, err := scan(st, base, interestingFor(targets))
	if err != nil {
		return nil, nil, err
	}
	owned, err := ownedDirs(st, base, fsys, ownedPaths, spec)
	if err != nil {
		return nil, nil, err
	}
	outs = append(outs, owned...)

	var bundles []string
	if len(ca) > 0 {
		seen := map[string]bool{}
		for _, b := range Bundles {
			target, e, ok := fsys.resolve(strings.TrimPrefix(b, "/"))
			if !ok || e.hdr.Typeflag != tar.TypeReg || seen[target] {
				continue
			}
			seen[target] = true
			old, err := readEntry(st, base.Layers[e.layer], target)
			if err != nil {
				return nil, nil, fmt.Errorf("bottle layer: read the image's CA bundle /%s: %w", target, err)
			}
			if len(old) > 0 && old[len(old)-1] != '\n' {
				old = append(old, '\n')
			}
			hdr := tar.Header{
				Typeflag: tar.TypeReg, Name: target, Mode: e.hdr.Mode, Uid: e.hdr.Uid, Gid: e.hdr.Gid,
			}
			outs = append(outs, entryOut{hdr: hdr, content: append(old, ca...)})
			bundles = append(bundles, "/"+target)
		}
		outs = append(outs, entryOut{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(CAFile, "/"), Mode: 0o644}, content: ca})
		if spec.BundleFile != "" {
			combined := ca
			for _, o := range outs {
				if len(bundles) > 0 && o.hdr.Name == strings.TrimPrefix(bundles[0], "/") {
					combined = o.content
				}
			}
			outs = append(outs, entryOut{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(spec.BundleFile, "/"), Mode: 0o644}, content: combined})
		}
	}
	for _, f := range spec.Files {
		outs = append(outs, entryOut{
			hdr:     tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID},
			content: f.Content,
		})
	}

	// Parent directories: a file's parents must not be symlinks in the
	// image (the layer's directory would hide the link), and parents the
	// image lacks are added so that every extractor creates them alike.
	dirs := map[string]bool{}
	for _, o := range outs {
		for d := path.Dir(strings.TrimSuffix(o.hdr.Name, "/")); d != "."; d = path.Dir(d) {
			e, ok := fsys.entries[d]
			if ok && e.hdr.Typeflag == tar.TypeSymlink {
				return nil, nil, fmt.Errorf("bottle layer: cannot add /%s: /%s is a symlink in the image; choose another path", o.hdr.Name, d)
			}
			if ok && e.hdr.Typeflag != tar.TypeDir {
				return nil, nil, fmt.Errorf("bottle layer: cannot add /%s: /%s is not a directory in the image", o.hdr.Name, d)
			}
			if !ok {
				dirs[d] = true
			}
		}
	}
	for d := range dirs {
		if !slices.ContainsFunc(outs, func(o entryOut) bool { return o.hdr.Name == d+"/" }) {
			outs = append(outs, entryOut{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}})
		}
	}
	slices.SortFunc(outs, func(a, b entryOut) int {
		return strings.Compare(strings.TrimSuffix(a.hdr.Name, "/"), strings.TrimSuffix(b.hdr.Name, "/"))
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, o := range outs {
		h := o.hdr
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(o.content))
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, nil, fmt.Errorf("bottle layer: %w", err)
		}
		if _, err := tw.Write(o.content); err != nil {
			return nil, nil, fmt.Errorf("bottle layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("bottle layer: %w", err)
	}
	return buf.Bytes(), bundles, nil
}

// interestingFor keeps the entries a bottle layer looks at: all of /etc
// (CA bundles and their symlinks) and the parents of the files it writes.
func interestingFor(targets []string) func(string) bool {
	parents := map[string]bool{}
	for _, t := range targets {
		for d := path.Dir(strings.TrimPrefix(t, "/")); d != "."; d = path.Dir(d) {
			parents[d] = true
		}
	}
	return func(p string) bool {
		return p == "etc" || strings.HasPrefix(p, "etc/") || parents[p] || slices.Contains(targets, "/"+p)
	}
}
