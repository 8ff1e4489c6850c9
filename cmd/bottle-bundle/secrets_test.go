package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

func secretsTar(t testing.TB, files map[string]string, typ byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, v := range files {
		if typ != tar.TypeReg {
			v = ""
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Mode: 0o600, Size: int64(len(v))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReceiveSecrets: plain files land 0600 in the dir; a name with a dir,
// a hidden one, or an entry that is not a plain file is refused, and
// nothing lands outside the dir.
func TestReceiveSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := receiveSecrets(bytes.NewReader(secretsTar(t, map[string]string{"0": "one", "3": "three"}, tar.TypeReg)), dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"0": "one", "3": "three"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		st, serr := os.Stat(filepath.Join(dir, name))
		if err != nil || serr != nil || string(got) != want || st.Mode().Perm() != 0o600 {
			t.Errorf("secret %s: %q %v %v", name, got, err, st)
		}
	}
	for _, bad := range []struct {
		name string
		typ  byte
	}{{"../escape", tar.TypeReg}, {"a/b", tar.TypeReg}, {".hidden", tar.TypeReg}, {"link", tar.TypeSymlink}, {"d", tar.TypeDir}} {
		if err := receiveSecrets(bytes.NewReader(secretsTar(t, map[string]string{bad.name: "x"}, bad.typ)), dir); err == nil {
			t.Errorf("%q (type %c) was taken", bad.name, bad.typ)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Error("a secret landed outside the dir")
	}
	big := strings.Repeat("x", maxSecretBytes+1)
	if err := receiveSecrets(bytes.NewReader(secretsTar(t, map[string]string{"9": big}, tar.TypeReg)), dir); err == nil {
		t.Error("an oversized secret was taken")
	}
}

// TestWaitForSecrets: serve waits until every secret's file is there (the
// secrets' values, the CA key, the operator token), and
// gives up, saying what to do, when one never comes.
func TestWaitForSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := bundle.Config{Proxy: proxy.Config{Secrets: []proxy.Secret{{Host: "a.example", ValueFile: filepath.Join(dir, "0")}},
		CAKeyFile: filepath.Join(dir, "ca-key.pem")}, Supervisor: supervisor.Config{OperatorTokenFile: filepath.Join(dir, "operator.token")}}
	go func() {
		time.Sleep(50 * time.Millisecond) // the plugin sends them a moment after start
		_ = receiveSecrets(bytes.NewReader(secretsTar(t, map[string]string{"0": "one", "ca-key.pem": "key", "operator.token": "op"}, tar.TypeReg)), dir)
	}()
	if err := waitForSecrets(context.Background(), secretFiles(cfg), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	missing := []string{filepath.Join(dir, "2")}
	if err := waitForSecrets(context.Background(), missing, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "docker bottle start") {
		t.Errorf("a secret that never comes: %v", err)
	}
}

// FuzzReceiveSecrets: whatever arrives on stdin, nothing is written
// outside the dir, and nothing panics.
func FuzzReceiveSecrets(f *testing.F) {
	f.Add(secretsTar(f, map[string]string{"0": "value"}, tar.TypeReg))
	f.Add(secretsTar(f, map[string]string{"../x": "value"}, tar.TypeReg))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "secrets")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = receiveSecrets(bytes.NewReader(data), dir)
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("written outside the dir: %v %v", entries, err)
		}
	})
}
