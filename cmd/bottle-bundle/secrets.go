package main

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle"
)

// Bounds of what `bottle-bundle secrets` takes: a bottle has a handful of
// secrets, each a token or a key.
const (
	maxSecrets     = 64
	maxSecretBytes = 64 << 10
	// secretsWait bounds how long serve waits for the plugin to send the
	// secrets after the bundle started.
	secretsWait = 2 * time.Minute
)

// runSecrets receives the bottle's secrets when its stage is on the
// engine: `bottle-bundle secrets --dir DIR` reads a tar of plain files
// from stdin (the plugin's exec, so no value is ever in an environment, a
// command line or a log) and writes each into DIR, a tmpfs, 0600. A file
// appears whole (written aside, then renamed), so serve, waiting for them,
// never reads half a value.
func runSecrets(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("secrets", flag.ContinueOnError)
	dir := fs.String("dir", "", "the dir to write the secrets into (a tmpfs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		return errors.New("usage: bottle-bundle secrets --dir DIR < TAR")
	}
	return receiveSecrets(os.Stdin, *dir)
}

func receiveSecrets(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the secrets: %w", err)
		}
		if n == maxSecrets {
			return fmt.Errorf("more than %d secrets", maxSecrets)
		}
		name := h.Name
		if h.Typeflag != tar.TypeReg || name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			return fmt.Errorf("secret %q: only plain files named without a dir are taken", name)
		}
		if h.Size > maxSecretBytes {
			return fmt.Errorf("secret %s: larger than %d bytes", name, maxSecretBytes)
		}
		//nolint:gosec // G305: name was checked above: no dir in it, no dot first
		if err := writeSecret(filepath.Join(dir, name), io.LimitReader(tr, maxSecretBytes)); err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
	}
}

func writeSecret(path string, r io.Reader) (err error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close() // the copy's error is the one to report
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// waitForSecrets waits, at most wait, until every file the bundle reads
// its secrets from exists (the secrets' values, the CA key, the operator
// token): on the engine, the plugin sends them once the bundle started.
func waitForSecrets(ctx context.Context, files []string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	pause := 5 * time.Millisecond
	for _, f := range files {
		for {
			_, err := os.Stat(f)
			if err == nil {
				break
			}
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not arrive within %s (docker bottle sends the secrets when it starts the bundle: start the bottle again with docker bottle start)", f, wait)
			case <-time.After(pause):
			}
			pause = min(pause*2, 200*time.Millisecond)
		}
	}
	return nil
}

// secretFiles are the files of cfg that hold secrets.
func secretFiles(cfg bundle.Config) []string {
	var files []string
	for _, s := range cfg.Proxy.Secrets {
		files = append(files, s.ValueFile)
	}
	for _, f := range []string{cfg.Proxy.CAKeyFile, cfg.Supervisor.OperatorTokenFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}
