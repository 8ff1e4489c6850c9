package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/staticimage"
)

// TestLabel marks every engine object a test makes.
const TestLabel = "dev.dockerbottle.test"

// Internet is a network made by a test that stands for the internet: its
// subnet is in 198.18.0.0/15 (RFC 2544's benchmarking range), which the
// bundle's destination guard treats like any public address, yet every
// packet goes to containers the test made.
type Internet struct {
	Network string
	Subnet  netip.Prefix
	eng     *client.Client
}

// Upstream is one host of the test's internet.
type Upstream struct {
	Name string // DNS name on the internet network
	IP   netip.Addr
}

// binImage is an image made of one static binary of this module.
type binImage struct {
	once sync.Once
	img  v1.Image
	ref  string
	err  error
	// mu serialises loading into the engines a test asks for: the image
	// is built once, but a test of a remote engine needs it there too.
	mu sync.Mutex
}

var (
	upstreamImg = &binImage{}
	standInImg  = &binImage{}
)

// upstreamImage builds the upstream server and loads it as an image, once
// per test process.
func upstreamImage(t testing.TB, eng *client.Client) string {
	t.Helper()
	return upstreamImg.get(t, eng, "./cmd/bottle-probe", "docker-bottle-test/upstream", "upstream")
}

// get builds pkg as a static Linux binary and loads it into the engine as
// repo:DIGEST, run as `/BIN ARGS...`; once per test process.
func (b *binImage) get(t testing.TB, eng *client.Client, pkg, repo string, args ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "bottle-testbin-*")
		if err != nil {
			b.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
			return
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			b.err = err
			return
		}
		path := "/" + filepath.Base(pkg)
		img, err := staticimage.Build([]staticimage.File{{Path: path, Mode: 0o755, Data: data}},
			staticimage.Config{Arch: runtime.GOARCH, Entrypoint: append([]string{path}, args...), Labels: map[string]string{TestLabel: "1"}})
		if err != nil {
			b.err = err
			return
		}
		d, _ := img.Digest()
		b.img, b.ref = img, repo+":"+d.Hex[:12]
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := eng.ImageInspect(context.Background(), b.ref); err == nil {
		return b.ref
	}
	if err := staticimage.Load(context.Background(), eng, b.ref, b.img); err != nil {
		t.Fatalf("loading %s into the engine at %s: %v", b.ref, eng.DaemonHost(), err)
	}
	return b.ref
}

// NewInternet makes the network; it and everything on it are removed when
// the test ends.
func NewInternet(t testing.TB, eng *client.Client) *Internet {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("bottle-test-internet-%d", time.Now().UnixNano()%1e9)
	for attempt := 0; attempt < 20; attempt++ {
		third := 18<<8 | rand.IntN(512) // 198.18.0.0 - 198.19.255.0
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, byte(third >> 8), byte(third), 0}), 24)
		gw := sub.Addr().Next()
		_, err := eng.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub, Gateway: gw}}},
			Labels: map[string]string{TestLabel: "1"},
		})
		if err != nil && strings.Contains(err.Error(), "overlap") {
			continue
		}
		if err != nil {
			t.Fatalf("making the test internet: %v", err)
		}
		in := &Internet{Network: name, Subnet: sub, eng: eng}
		t.Cleanup(in.remove)
		return in
	}
	t.Fatal("no free /24 in 198.18.0.0/15 for the test internet")
	return nil
}

// Host starts an upstream server (`bottle-bundle upstream`) on the
// internet under dnsName, answering on port 80 (and 443 when certDir holds
// cert.pem and key.pem). It returns when the server answers.
func (in *Internet) Host(t testing.TB, dnsName string, certDir string) Upstream {
	t.Helper()
	return StartUpstream(t, in.eng, in.Network, dnsName, certDir, map[string]string{TestLabel: "1"})
}

// StartUpstream runs `bottle-bundle upstream` on network under the alias
// dnsName (HTTPS too when certDir holds cert.pem and key.pem; extra flags
// such as --secret-header follow), labelled with labels, and waits until
// it answers. It is removed when the test ends.
func StartUpstream(t testing.TB, eng *client.Client, networkName, dnsName, certDir string, labels map[string]string, extra ...string) Upstream {
	t.Helper()
	return startHost(t, eng, upstreamImage(t, eng), networkName, dnsName, certDir, labels, append([]string{"--name", dnsName}, extra...))
}

// StartStandIn runs a stand-in of a real internet host (the standin
// program in mode "anthropic" or "npm", flags such as --key-sha256
// following) on network under the alias dnsName, serving HTTPS with
// certDir's cert.pem and key.pem, labelled with labels; it waits until
// the stand-in answers, and removes it when the test ends.
func StartStandIn(t testing.TB, eng *client.Client, networkName, dnsName, certDir string, labels map[string]string, mode string, extra ...string) Upstream {
	t.Helper()
	img := standInImg.get(t, eng, "./internal/testenv/standin", "docker-bottle-test/standin")
	return startHost(t, eng, img, networkName, dnsName, certDir, labels, append([]string{"--mode", mode, "--name", dnsName}, extra...))
}

// startHost runs img with cmd (plus the TLS flags when certDir is set) on
// network under the alias dnsName and waits until it answers on port 80.
func startHost(t testing.TB, eng *client.Client, img, networkName, dnsName, certDir string, labels map[string]string, cmd []string) Upstream {
	t.Helper()
	ctx := context.Background()
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(networkName), ReadonlyRootfs: true}
	if certDir != "" {
		cmd = append(cmd, "--cert", "/certs/cert.pem", "--key", "/certs/key.pem")
		hc.Binds = []string{certDir + ":/certs:ro"}
	}
	c, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: img, Cmd: cmd, Labels: labels},
		HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			networkName: {Aliases: []string{dnsName}},
		}},
	})
	if err != nil {
		t.Fatalf("creating upstream %s: %v", dnsName, err)
	}
	t.Cleanup(func() { eng.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true}) })
	if _, err := eng.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting upstream %s: %v", dnsName, err)
	}
	res, err := eng.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := Upstream{Name: dnsName, IP: res.Container.NetworkSettings.Networks[networkName].IPAddress}
	// The host routes to the container's address (a bridge the test made).
	hc2 := &http.Client{Timeout: time.Second}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := hc2.Get("http://" + u.IP.String() + "/")
		if err == nil {
			resp.Body.Close()
			return u
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("upstream %s never answered: %v", dnsName, err)
		}
	}
}

// Connect attaches a container (a bundle) to the internet, as its egress.
func (in *Internet) Connect(t testing.TB, containerName string) {
	t.Helper()
	if _, err := in.eng.NetworkConnect(context.Background(), in.Network, client.NetworkConnectOptions{Container: containerName}); err != nil {
		t.Fatalf("connecting %s to the test internet: %v", containerName, err)
	}
}

func (in *Internet) remove() {
	ctx := context.Background()
	f := make(client.Filters).Add("label", TestLabel+"=1").Add("network", in.Network)
	if cs, err := in.eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range cs.Items {
			in.eng.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	// Containers of other owners (bundles) are disconnected, not removed.
	if res, err := in.eng.NetworkInspect(ctx, in.Network, client.NetworkInspectOptions{}); err == nil {
		for id := range res.Network.Containers {
			in.eng.NetworkDisconnect(ctx, in.Network, client.NetworkDisconnectOptions{Container: id, Force: true})
		}
	}
	in.eng.NetworkRemove(ctx, in.Network, client.NetworkRemoveOptions{})
}
