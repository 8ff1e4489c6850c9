// Command pipeline is the image pipeline's benchmark driver (run by
// bench/pipeline.sh): it runs the pipeline as the plugin does, against the
// real engine, and prints one JSON line of measurements.
//
//	pipeline run -image REF -cache DIR   one pipeline run (cold or warm)
//	pipeline serve -cache DIR            an embedded registry for crane
//	pipeline ca                          a throwaway CA certificate
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/display"
	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/image/pack"
	"github.com/docker-bottle/docker-bottle/image/registry"
	"github.com/docker-bottle/docker-bottle/image/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipeline run|serve [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "ca":
		err = writeCA()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// pullPacker stands in for smolvm: it pulls every blob of the image from
// the registry, as smolvm's in-VM crane would, and times that separately.
type pullPacker struct {
	pull   time.Duration
	pulled int64
}

func (p *pullPacker) Version(context.Context) (string, error) { return "bench", nil }

func (p *pullPacker) PackCreate(ctx context.Context, req pack.Request) error {
	start := time.Now()
	env := map[string]string{}
	for _, kv := range req.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	// The bench registry is always the embedded one: its password is the
	// only password_env given.
	auth := &authn.Basic{Username: registry.Username, Password: env["DOCKER_BOTTLE_REGISTRY_PASSWORD_0"]}
	ref, err := name.ParseReference(req.Image)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref, remote.WithAuth(auth), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		p.pulled += n
	}
	p.pull = time.Since(start)
	if err := os.WriteFile(req.Output, nil, 0o755); err != nil {
		return err
	}
	return os.WriteFile(pack.ArtifactPath(req.Output), []byte(req.Image+"\n"), 0o644)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	ref := fs.String("image", "", "image in the engine")
	cache := fs.String("cache", "", "cache dir")
	caFile := fs.String("ca", "", "bottle CA (PEM file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	eng, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer eng.Close()
	packer := &pullPacker{}
	// Phase times: when each stage last reported done, from the start.
	var start time.Time
	phases := map[string]float64{}
	var mu sync.Mutex
	pw := display.WriterFunc(func(e display.Event) {
		if e.Status == display.Done {
			mu.Lock()
			phases[string(e.Stage)] = time.Since(start).Seconds()
			mu.Unlock()
		}
	})
	p, err := image.New(eng, packer, *cache, image.WithProgress(pw))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := eng.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return err
	}
	start = time.Now()
	res, err := p.Run(ctx, image.Request{Image: *ref, Bottle: layer.Spec{CA: ca}})
	if err != nil {
		return err
	}
	total := time.Since(start)
	out := map[string]any{
		"cache_hit":      res.CacheHit,
		"seconds":        total.Seconds(),
		"pull_seconds":   packer.pull.Seconds(),
		"bytes_exported": res.BytesExported,
		"bytes_pushed":   res.BytesPushed,
		"bytes_pulled":   packer.pulled,
		"peak_rss_bytes": peakRSS(),
		"phases":         phases,
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// peakRSS is the process's high-water resident set size.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// writeCA prints a fresh self-signed CA certificate (PEM).
func writeCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docker bottle benchmark CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return pem.Encode(os.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cache := fs.String("cache", "", "store dir")
	user := fs.String("user", "bench", "user name")
	password := fs.String("password", "", "password")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		return errors.New("serve: -password is required")
	}
	st, err := store.Open(*cache)
	if err != nil {
		return err
	}
	srv, err := registry.Start(st, registry.WithCredentials(*user, *password))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Println(srv.Host())
	// Serve until stdin closes.
	_, _ = io.Copy(io.Discard, os.Stdin)
	st2 := srv.Stats()
	fmt.Fprintf(os.Stderr, "serve: received %d blob bytes, peak RSS %d\n", st2.BlobBytesReceived, peakRSS())
	return nil
}
