package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateCAMakesOnceWithModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bottle", "ca")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, CertFile): 0o644, filepath.Join(dir, KeyFile): 0o600} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("CA dir holds %d entries, want ca.pem and ca-key.pem only", len(entries))
	}
	c := ca.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA certificate: IsCA=%v algorithm=%v, want an ECDSA CA", c.IsCA, c.PublicKeyAlgorithm)
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Error("second LoadOrCreateCA made a new CA instead of loading the first")
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, CertFile))
	if !bytes.Equal(onDisk, ca.CertPEM()) {
		t.Error("CertPEM differs from ca.pem")
	}
}

func TestLoadOrCreateCAConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	pems := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := LoadOrCreateCA(dir)
			errs[i] = err
			if err == nil {
				pems[i] = ca.CertPEM()
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(pems[i], pems[0]) {
			t.Fatalf("caller %d got a different CA than caller 0", i)
		}
	}
	if _, err := LoadCA(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)); err != nil {
		t.Fatalf("files left by concurrent callers do not load: %v", err)
	}
}

func TestLoadCARejectsBadInput(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := LoadOrCreateCA(a); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(b); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a pem"), 0o600)
	for name, files := range map[string][2]string{
		"mismatched key":  {filepath.Join(a, CertFile), filepath.Join(b, KeyFile)},
		"garbage cert":    {garbage, filepath.Join(a, KeyFile)},
		"garbage key":     {filepath.Join(a, CertFile), garbage},
		"missing cert":    {filepath.Join(a, "nope.pem"), filepath.Join(a, KeyFile)},
		"key as the cert": {filepath.Join(a, KeyFile), filepath.Join(a, KeyFile)},
	} {
		if _, err := LoadCA(files[0], files[1]); err == nil {
			t.Errorf("%s: LoadCA succeeded, want an error", name)
		}
	}
	// A key whose certificate never arrived (a crashed creator) is an error
	// that tells the user what to remove, not a hang or a new CA.
	defer func(d time.Duration) { certWait = d }(certWait)
	certWait = 100 * time.Millisecond
	c := t.TempDir()
	os.WriteFile(filepath.Join(c, KeyFile), []byte("junk"), 0o600)
	if _, err := LoadOrCreateCA(c); err == nil || !strings.Contains(err.Error(), "remove "+c) {
		t.Errorf("half-made CA dir: err = %v, want one naming %s", err, c)
	}
}

func TestMinterLeafVerifiesAndIsCached(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(ca, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	for _, host := range []string{"api.example.com", "127.0.0.1", "::1"} {
		c, err := m.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("%s: leaf does not verify against the CA: %v", host, err)
		}
		if len(c.Certificate) != 2 {
			t.Errorf("%s: chain has %d certificates, want leaf and CA", host, len(c.Certificate))
		}
	}
	if _, err := m.Leaf(""); err == nil {
		t.Error("Leaf(\"\") succeeded")
	}

	// Many goroutines asking for one host get one certificate.
	var wg sync.WaitGroup
	got := make([][]byte, 32)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := m.Leaf("Concurrent.Example.COM.")
			if err == nil {
				got[i] = c.Certificate[0]
			}
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] == nil || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("goroutine %d got a different (or no) leaf: hosts must mint once", i)
		}
	}

	// A leaf close to expiry is re-minted.
	first, _ := m.Leaf("renew.example.com")
	m.now = func() time.Time { return time.Now().Add(leafValidity) }
	second, err := m.Leaf("renew.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Error("a leaf about to expire was served from the cache")
	}
}

func TestMinterCacheIsBounded(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(ca, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"a.test", "b.test", "c.test", "d.test", "e.test", "f.test"} {
		if _, err := m.Leaf(h); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(m.leaves); n > 4 {
		t.Errorf("cache holds %d leaves, limit is 4", n)
	}
}
