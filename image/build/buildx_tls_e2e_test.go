//go:build e2e

package build_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"

	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/internal/testenv"
)

// TestBuildxOnATLSContext: on a docker context that reaches the engine
// over mutual TLS, buildx builds through that TLS endpoint (its BuildKit
// session goes through it) and no file anywhere under TMPDIR holds the
// context's private key: buildx reads the key from the context store.
func TestBuildxOnATLSContext(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	_, cfgDir := dockerCli(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	certs := t.TempDir()
	key := mintTLS(t, certs)
	addr, requests := tlsEngine(t, certs, strings.TrimPrefix(eng.DaemonHost(), "unix://"))
	out, err := exec.Command("docker", "context", "create", "tls-test", "--docker",
		"host=tcp://"+addr+",ca="+filepath.Join(certs, "ca.pem")+",cert="+filepath.Join(certs, "cert.pem")+",key="+filepath.Join(certs, "key.pem")).CombinedOutput()
	if err != nil {
		t.Fatalf("docker context create: %v\n%s", err, out)
	}
	// The context store holds its own copies now.
	if err := os.RemoveAll(certs); err != nil {
		t.Fatal(err)
	}

	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	opts := flags.NewClientOptions()
	opts.Context = "tls-test"
	if err := cli.Initialize(opts); err != nil {
		t.Fatal(err)
	}
	if cli.DockerEndpoint().TLSData == nil {
		t.Fatal("the context has no TLS material")
	}
	b, err := build.New(cli, eng, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(build.Buildx); !ok {
		t.Fatalf("build.New chose %T with buildx installed", b)
	}
	tag := testenv.Tag(t, eng, "buildx-tls")
	if _, err := b.Build(ctx, build.Options{ContextDir: testContext(t), Tag: tag, DockerfileContent: []byte("FROM scratch\nCOPY b.txt /b\n")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ImageInspect(ctx, tag); err != nil {
		t.Errorf("the image is not in the engine: %v", err)
	}
	if got := requests(); !strings.Contains(got, "/grpc") && !strings.Contains(got, "/session") {
		t.Errorf("no BuildKit session went through the TLS endpoint; its requests:\n%s", got)
	}
	_ = filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, key) {
			t.Errorf("%s holds the context's private key", p)
		}
		return nil
	})
	_ = filepath.WalkDir(cfgDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, string(filepath.Separator)+"contexts"+string(filepath.Separator)) {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, key) {
			t.Errorf("%s, outside the context store, holds the context's private key", p)
		}
		return nil
	})
}

// mintTLS writes ca.pem, cert.pem and key.pem (a client's) and server.pem
// and server-key.pem (127.0.0.1's) into dir; it returns the client key's PEM.
func mintTLS(t *testing.T, dir string) []byte {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) []byte {
		b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return b
	}
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, certName, keyName string) []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(certName, "CERTIFICATE", der)
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(keyName, "EC PRIVATE KEY", kder)
	}
	leaf(2, x509.ExtKeyUsageServerAuth, "server.pem", "server-key.pem")
	return leaf(3, x509.ExtKeyUsageClientAuth, "cert.pem", "key.pem")
}

// tlsEngine serves the engine at sock on 127.0.0.1 over TLS that asks for
// a client certificate of the CA in dir; requests returns the first line
// of each connection's first request.
func tlsEngine(t *testing.T, dir, sock string) (string, func() string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer up.Close()
				br := bufio.NewReader(c)
				if line, err := br.ReadString('\n'); err == nil {
					mu.Lock()
					lines = append(lines, strings.TrimSpace(line))
					mu.Unlock()
					if _, err := io.WriteString(up, line); err != nil {
						return
					}
				}
				go func() { _, _ = io.Copy(up, br); _ = up.(*net.UnixConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
}
