package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pelletier/go-toml/v2"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

var packSpec = &cmdSpec{
	path:  "pack create",
	usage: "pack create [OPTIONS] --output <OUTPUT>",
	flags: []flagSpec{
		{long: "image", short: 'I', value: "IMAGE"},
		{long: "from-vm", value: "NAME"},
		{long: "rebase-from-image", value: "IMAGE"},
		{long: "output", short: 'o', value: "OUTPUT"},
		{long: "cpus", value: "N"},
		{long: "mem", value: "MiB"},
		{long: "oci-platform", value: "OS/ARCH"},
		{long: "entrypoint", value: "CMD"},
		{long: "single-file"},
		{long: "no-sign"},
		{long: "smolfile", short: 's', value: "PATH"},
		{long: "gpu"},
		{long: "staging-dir", value: "DIR"},
		{long: "proxy", value: "URL"},
		{long: "no-proxy", value: "LIST"},
		{long: "stub", value: "PATH"},
		{long: "lib-dir", value: "DIR"},
		{long: "rootfs-dir", value: "DIR"},
	},
	required:  []string{"output"},
	conflicts: [][2]string{{"image", "from-vm"}},
}

func packCreate(args []string) {
	p := packSpec.parse(args)
	if p.has("rebase-from-image") && !p.has("from-vm") {
		usageError(packSpec, "the following required arguments were not provided:\n  --from-vm <NAME>")
	}
	if !p.has("image") && !p.has("from-vm") && !p.has("smolfile") {
		usageError(packSpec, "the following required arguments were not provided:\n  --image <IMAGE>")
	}
	out := p.str("output")
	if strings.HasSuffix(out, ".smolmachine") {
		stem := strings.TrimSuffix(out, ".smolmachine")
		fail("config operation failed: pack create: --output names the executable stub, not the .smolmachine sidecar "+
			"(which is created automatically as '<output>.smolmachine'). Use --output %s instead.", stem)
	}
	if p.has("from-vm") {
		fail("agent operation failed: pack from VM: the fake smolvm cannot snapshot a machine (--from-vm)")
	}
	if p.has("smolfile") {
		fail("config operation failed: pack create: the fake smolvm does not read Smolfiles (-s)")
	}
	cpus, err := intFlag(p, "cpus", 4)
	if err != nil {
		usageError(packSpec, "%v", err)
	}
	mem, err := intFlag(p, "mem", 8192)
	if err != nil {
		usageError(packSpec, "%v", err)
	}
	checkKVM("")

	ref := p.str("image")
	if err := checkImageRef(ref); err != nil {
		fail("agent operation failed: pull image: %v", err)
	}
	platform := p.str("oci-platform")
	if platform == "" {
		platform = "linux/" + runtime.GOARCH
	}
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		fail("config operation failed: pack create: --oci-platform %q: %v", platform, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "Pulling image %s... ", ref)
	img, digest, err := pull(ctx, ref, *plat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failed.")
		fail("agent operation failed: pull image: %v", err)
	}
	fmt.Fprintln(os.Stderr, "done.")

	cf, err := img.ConfigFile()
	if err != nil {
		fail("agent operation failed: pull image: crane config failed: %v", err)
	}
	m := fakestate.Manifest{
		Image:         ref,
		Digest:        digest,
		Platform:      platform,
		HostPlatform:  "linux/" + runtime.GOARCH,
		CPUs:          cpus,
		MemoryMiB:     mem,
		Entrypoint:    cf.Config.Entrypoint,
		Cmd:           cf.Config.Cmd,
		Env:           cf.Config.Env,
		Workdir:       cf.Config.WorkingDir,
		Created:       time.Now().UTC().Format(time.RFC3339),
		SmolvmVersion: version(),
	}
	if e := p.str("entrypoint"); e != "" {
		m.Entrypoint = []string{e} // one argv element, no splitting; CMD kept
	}
	if cf.OS != "" && cf.OS+"/"+cf.Architecture != platform && cf.Architecture != "" {
		fail("agent operation failed: pull image: image platform %s/%s does not match %s", cf.OS, cf.Architecture, platform)
	}

	abs, err := filepath.Abs(out)
	if err != nil {
		fail("config operation failed: pack create: %v", err)
	}
	stub, total, sidecarSize, err := writeArtifact(abs, img, m, p.has("single-file"))
	if err != nil {
		fail("config operation failed: pack create: %v", err)
	}
	fmt.Printf("Packed: %s (stub: %dKB, total: %dKB)\n", abs, stub/1024, total/1024)
	if !p.has("single-file") {
		fmt.Printf("Assets: %s.smolmachine (%dKB compressed)\n", abs, sidecarSize/1024)
	}
}

func intFlag(p *parsed, long string, def int) (int, error) {
	if !p.has(long) {
		return def, nil
	}
	var n int
	if _, err := fmt.Sscanf(p.str(long), "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != p.str(long) {
		return 0, fmt.Errorf("invalid value '%s' for '--%s <N>': invalid digit found in string", p.str(long), long)
	}
	return n, nil
}

// checkImageRef is the guest agent's rule: first character alphanumeric,
// the rest in [A-Za-z0-9._/:@-].
func checkImageRef(ref string) error {
	if ref == "" {
		return errors.New("invalid image reference: empty")
	}
	for i, c := range ref {
		alnum := c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
		if i == 0 && !alnum {
			return fmt.Errorf("invalid image reference '%s': must start with an alphanumeric character", ref)
		}
		if !alnum && !strings.ContainsRune("._/:@-", c) {
			return fmt.Errorf("invalid image reference '%s': invalid character '%c'", ref, c)
		}
	}
	return nil
}

// normalizeRef applies smolvm's rule: the first path component is a
// registry only if it contains '.' or ':' (so localhost/x is Docker Hub's).
func normalizeRef(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if found && !strings.ContainsAny(first, ".:") {
		return "docker.io/" + ref
	}
	return ref
}

// settings is the part of smolvm's config.toml that pulls read.
type settings struct {
	Images struct {
		Registries map[string]struct {
			Username    string `toml:"username"`
			Password    string `toml:"password"`
			PasswordEnv string `toml:"password_env"`
			Mirror      string `toml:"mirror"`
		} `toml:"registries"`
	} `toml:"images"`
}

func configPath() string {
	if p := os.Getenv("SMOLVM_CONFIG"); p != "" {
		return p
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		dir = filepath.Join(os.Getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "smolvm", "config.toml")
}

func loadSettings() (settings, error) {
	var s settings
	path := configPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// No settings file: no credentials, as with smolvm's defaults.
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("config operation failed: load config: %v", err)
	}
	if err := toml.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("config operation failed: load config: %s: %v", path, err)
	}
	return s, nil
}

// pull fetches the image for the platform with smolvm's credentials. Plain
// HTTP follows crane's built-in rule (go-containerregistry's default:
// localhost:PORT, 127.0.0.1, ::1, *.local, *.localhost, RFC 1918).
func pull(ctx context.Context, rawRef string, plat v1.Platform) (v1.Image, string, error) {
	s, err := loadSettings()
	if err != nil {
		return nil, "", err
	}
	ref, err := name.ParseReference(normalizeRef(rawRef))
	if err != nil {
		return nil, "", fmt.Errorf("invalid image reference '%s': %v", rawRef, err)
	}
	key := ref.Context().RegistryStr()
	if key == name.DefaultRegistry {
		key = "docker.io"
	}
	auth := authn.Anonymous
	if r, ok := s.Images.Registries[key]; ok {
		if r.Mirror != "" {
			reg, err := name.NewRegistry(r.Mirror)
			if err != nil {
				return nil, "", fmt.Errorf("config operation failed: registry %s: mirror %q: %v", key, r.Mirror, err)
			}
			switch t := ref.(type) {
			case name.Tag:
				t.Repository.Registry = reg
				ref = t
			case name.Digest:
				t.Repository.Registry = reg
				ref = t
			}
		}
		pw := r.Password
		if r.PasswordEnv != "" {
			v, ok := os.LookupEnv(r.PasswordEnv)
			if !ok {
				return nil, "", fmt.Errorf("registry %s: password_env %s is not set in the environment", key, r.PasswordEnv)
			}
			pw = v
		}
		if r.Username != "" {
			auth = &authn.Basic{Username: r.Username, Password: pw}
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("crane manifest failed: %v", err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, "", fmt.Errorf("crane manifest failed: %v", err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, "", fmt.Errorf("crane manifest failed: %v", err)
		}
		var found *v1.Descriptor
		var platforms []string
		for i, d := range im.Manifests {
			if d.Platform == nil {
				continue
			}
			platforms = append(platforms, d.Platform.String())
			if found == nil && d.Platform.Satisfies(plat) {
				found = &im.Manifests[i]
			}
		}
		if found == nil {
			return nil, "", fmt.Errorf("crane manifest failed: got manifest list instead of image manifest - platform may not be available. manifests: [%s]", strings.Join(platforms, ", "))
		}
		img, err := idx.Image(found.Digest)
		if err != nil {
			return nil, "", fmt.Errorf("crane manifest failed: %v", err)
		}
		return img, found.Digest.String(), nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", fmt.Errorf("crane manifest failed: %v", err)
	}
	return img, desc.Digest.String(), nil
}

// writeArtifact writes the stub (a copy of this program, as smolvm copies
// itself) and the sidecar: an uncompressed tar of manifest.json and the
// merged root filesystem. It returns the stub, total and sidecar sizes.
func writeArtifact(out string, img v1.Image, m fakestate.Manifest, singleFile bool) (int64, int64, int64, error) {
	dir := filepath.Dir(out)
	tmp, err := os.MkdirTemp(dir, ".pack-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(tmp)

	// The merged layer first, to know its size for the tar header.
	rootfs := filepath.Join(tmp, "rootfs.tar")
	if err := writeMerged(img, rootfs); err != nil {
		return 0, 0, 0, fmt.Errorf("merge layers: %v", err)
	}
	sidecar := filepath.Join(tmp, "sidecar")
	if err := writeSidecar(sidecar, m, rootfs); err != nil {
		return 0, 0, 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	stubTmp := filepath.Join(tmp, "stub")
	stubSize, err := copyFile(self, stubTmp, 0o755)
	if err != nil {
		return 0, 0, 0, err
	}
	fi, err := os.Stat(sidecar)
	if err != nil {
		return 0, 0, 0, err
	}
	if singleFile {
		// One executable: the stub with the assets appended.
		f, err := os.OpenFile(stubTmp, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return 0, 0, 0, err
		}
		s, err := os.Open(sidecar)
		if err == nil {
			_, err = io.Copy(f, s)
			s.Close()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, 0, 0, err
		}
		return stubSize, stubSize + fi.Size(), 0, os.Rename(stubTmp, out)
	}
	if err := os.Rename(sidecar, out+".smolmachine"); err != nil {
		return 0, 0, 0, err
	}
	return stubSize, stubSize + fi.Size(), fi.Size(), os.Rename(stubTmp, out)
}

func writeMerged(img v1.Image, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeSidecar(path string, m fakestate.Manifest, rootfs string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: fakestate.SidecarManifest, Mode: 0o644, Size: int64(len(mb)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	r, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: fakestate.SidecarRootfs, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, r); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(src, dst string, mode os.FileMode) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
