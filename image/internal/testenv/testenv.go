// Package testenv holds what the image pipeline's tests share: the real
// engine, test images assembled from static binaries (FROM scratch, never
// pulled), and a throwaway CA.
package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv"

	"github.com/moby/moby/client"
)

// Label marks every engine object the tests make.
const Label = testenv.TestLabel

// Engine is the shared testenv.Engine.
func Engine(t testing.TB) *client.Client { return testenv.Engine(t) }

// StaticBinary compiles a static Linux program that prints msg, into dir.
func StaticBinary(t testing.TB, dir, name, msg string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "main.go")
	prog := fmt.Sprintf("package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(%q) }\n", msg)
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GO111MODULE=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build static test binary (needs the go toolchain): %v\n%s", err, b)
	}
	return out
}

// Context writes a build context: files (relative path -> content) and a
// Dockerfile.
func Context(t testing.TB, dockerfile string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Tag returns a unique image tag for a test and removes the image when the
// test ends.
func Tag(t testing.TB, eng *client.Client, what string) string {
	t.Helper()
	tag := fmt.Sprintf("docker-bottle-test/%s:%d", strings.ToLower(what), time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = eng.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return tag
}

// CA returns a fresh self-signed CA certificate, PEM.
func CA(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
