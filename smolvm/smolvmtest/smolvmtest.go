// Package smolvmtest helps tests that drive the fake smolvm
// (smolvm/fakesmolvm): it builds the fake and a static probe program,
// assembles an image from the probe in memory, and serves a registry on
// 127.0.0.1 (optionally with basic auth) to push it to.
package smolvmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

// Main is a TestMain for packages tested against the fake: it builds the
// fake and the probe into a temporary directory, sets *fake and *probe to
// their paths, runs the tests and removes the directory. TestMain exits
// with its result.
func Main(m *testing.M, fake, probe *string) int {
	dir, err := os.MkdirTemp("", "smolvm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *fake, err = BuildFake(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *probe, err = BuildProbe(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// BuildFake builds the fake smolvm into dir/smolvm.
func BuildFake(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return fakestate.Build(ctx, dir)
}

// probeSource is a static guest program for tests. Commands:
//
//	exit N            exit with status N
//	env               print the environment, one NAME=VALUE a line
//	pwd               print the working directory
//	cat FILE          print a file
//	write FILE TEXT   write TEXT to FILE
//	stdin             copy stdin to stdout
//	say OUT ERR       print OUT on stdout and ERR on stderr
//	kill-self SIG     kill itself with signal number SIG
//	workload FILE     write its pid to FILE, then sleep until killed
//	sleep             sleep until killed
//	isatty            print whether stdin, stdout and stderr are terminals
//	uid               print its user and group ids
const probeSource = `package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

func isatty(fd int) bool {
	var t syscall.Termios
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return e == 0
}

func main() {
	a := os.Args[1:]
	if len(a) == 0 {
		fmt.Fprintln(os.Stderr, "probe: no command")
		os.Exit(100)
	}
	switch a[0] {
	case "exit":
		n, _ := strconv.Atoi(a[1])
		os.Exit(n)
	case "env":
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	case "pwd":
		d, _ := os.Getwd()
		fmt.Println(d)
	case "cat":
		b, err := os.ReadFile(a[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(a[1], []byte(a[2]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	case "stdin":
		io.Copy(os.Stdout, os.Stdin)
	case "say":
		fmt.Fprintln(os.Stdout, a[1])
		fmt.Fprintln(os.Stderr, a[2])
	case "kill-self":
		n, _ := strconv.Atoi(a[1])
		syscall.Kill(os.Getpid(), syscall.Signal(n))
		time.Sleep(time.Minute)
	case "workload":
		os.WriteFile(a[1], []byte(strconv.Itoa(os.Getpid())), 0o644)
		for {
			time.Sleep(time.Hour)
		}
	case "isatty":
		fmt.Printf("stdin=%v stdout=%v stderr=%v\n", isatty(0), isatty(1), isatty(2))
	case "uid":
		fmt.Printf("%d %d\n", os.Getuid(), os.Getgid())
	case "say-sleep":
		fmt.Fprintln(os.Stdout, a[1])
		for {
			time.Sleep(time.Hour)
		}
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	default:
		fmt.Fprintln(os.Stderr, "probe: unknown command", a[0])
		os.Exit(100)
	}
}
`

// BuildProbe compiles the probe program (CGO_ENABLED=0, so it runs in an
// empty root filesystem) into dir/probe.
func BuildProbe(dir string) (string, error) {
	src := filepath.Join(dir, "probe-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(probeSource), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module probe\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the probe (needs the go tool): %w\n%s", err, b)
	}
	return out, nil
}

// ProbeImageConfig is the config of ProbeImage.
var ProbeImageConfig = v1.Config{
	Entrypoint: []string{"/bin/probe"},
	Cmd:        []string{"sleep"},
	Env:        []string{"PATH=/usr/local/bin:/bin", "IMAGE_ONLY=image", "SHARED=image"},
	WorkingDir: "/work",
}

// ProbeImage is a two-layer linux image for the host's architecture: the
// first layer holds /bin/probe, /usr/local/bin/probe-link (a symlink to
// it), /work and /old/gone; the second deletes /old/gone (a whiteout) and
// adds /etc/probe-release. Layers are uncompressed, as smolvm accepts.
func ProbeImage(probe string) (v1.Image, error) {
	bin, err := os.ReadFile(probe)
	if err != nil {
		return nil, err
	}
	l1, err := layer([]entry{
		{name: "bin/", dir: true},
		{name: "bin/probe", body: bin, mode: 0o755},
		{name: "usr/", dir: true}, {name: "usr/local/", dir: true}, {name: "usr/local/bin/", dir: true},
		{name: "usr/local/bin/probe-link", link: "/bin/probe"},
		{name: "work/", dir: true},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "old/", dir: true},
		{name: "old/gone", body: []byte("should be deleted by the next layer\n"), mode: 0o644},
	})
	if err != nil {
		return nil, err
	}
	l2, err := layer([]entry{
		{name: "old/.wh.gone", mode: 0o644},
		{name: "etc/", dir: true},
		{name: "etc/probe-release", body: []byte("probe 1\n"), mode: 0o644},
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = ProbeImageConfig
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	name string
	body []byte
	mode int64
	dir  bool
	link string
}

func layer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.link, 0, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), nil
}

// Registry is a go-containerregistry registry served on 127.0.0.1.
type Registry struct {
	Host     string // 127.0.0.1:PORT
	Username string // empty: no auth
	Password string
	srv      *http.Server
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// WithBasicAuth makes the registry demand these credentials.
func WithBasicAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.Username, r.Password = user, password }
}

// NewRegistry serves a registry on addr ("127.0.0.1:0" if empty) until the
// test ends.
func NewRegistry(t testing.TB, addr string, opts ...RegistryOption) *Registry {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("registry: listen on %s: %v", addr, err)
	}
	r := &Registry{Host: ln.Addr().String()}
	for _, o := range opts {
		o(r)
	}
	var h = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if r.Username != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.Username || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="smolvmtest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, req)
		})
	}
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// Push writes img to this registry as repo:tag and returns the reference.
func (r *Registry) Push(t testing.TB, img v1.Image, repoTag string) string {
	t.Helper()
	ref := r.Host + "/" + strings.TrimPrefix(repoTag, "/")
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	auth := authn.Anonymous
	if r.Username != "" {
		auth = &authn.Basic{Username: r.Username, Password: r.Password}
	}
	if err := remote.Write(tag, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}
