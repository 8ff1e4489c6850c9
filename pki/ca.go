// Package pki holds the bottle CA: one ECDSA P-256 certificate authority per
// user, made once in the state dir, from which the egress proxy mints a leaf
// certificate for each host it intercepts. The plugin makes or loads the CA
// at prepare and gives bottles only its certificate; the key is mounted
// read-only into the bundle and nowhere else.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names inside the CA directory.
const (
	CertFile = "ca.pem"
	KeyFile  = "ca-key.pem"
)

// caValidity is how long a new CA is valid. A CA is made once per user, so it
// outlives many bottles; the leaves it signs are short-lived.
const caValidity = 10 * 365 * 24 * time.Hour

// certWait is how long a loader waits for the certificate of a CA whose key
// a concurrent LoadOrCreateCA has just published.
var certWait = 5 * time.Second

// CA is a loaded certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate, PEM-encoded, as bottles trust it.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// LoadOrCreateCA loads the CA from dir, making it (and dir, mode 0700) first
// when dir holds none. Concurrent callers, even in different processes, end
// up with the same CA: the key file is published with a link that fails when
// another caller got there first.
func LoadOrCreateCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the bottle CA directory: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return waitAndLoad(certPath, keyPath)
	}
	certPEM, keyPEM, err := generateCA()
	if err != nil {
		return nil, err
	}
	tmpKey, err := writeTemp(dir, "ca-key-*.tmp", keyPEM, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmpKey)
	tmpCert, err := writeTemp(dir, "ca-*.tmp", certPEM, 0o644)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmpCert)
	if err := os.Link(tmpKey, keyPath); err != nil {
		if errors.Is(err, os.ErrExist) {
			return waitAndLoad(certPath, keyPath)
		}
		return nil, fmt.Errorf("saving the bottle CA key: %w", err)
	}
	if err := os.Rename(tmpCert, certPath); err != nil {
		return nil, fmt.Errorf("saving the bottle CA certificate: %w", err)
	}
	return LoadCA(certPath, keyPath)
}

// waitAndLoad loads a CA whose key exists; its certificate may still be on
// its way from a concurrent LoadOrCreateCA.
func waitAndLoad(certPath, keyPath string) (*CA, error) {
	deadline := time.Now().Add(certWait)
	for {
		_, err := os.Stat(certPath)
		if err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ca, err := LoadCA(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w (to start over with a new CA, remove %s; bottles trust the new one from their next start)", err, filepath.Dir(keyPath))
	}
	return ca, nil
}

// LoadCA loads a CA from a PEM certificate and a PEM private key (PKCS#8,
// SEC 1 or PKCS#1) and checks that they belong together.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the bottle CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the bottle CA key: %w", err)
	}
	return parseCA(certPEM, keyPEM, certFile, keyFile)
}

func parseCA(certPEM, keyPEM []byte, certFile, keyFile string) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("bottle CA certificate %s: no PEM CERTIFICATE block", certFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bottle CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("bottle CA certificate %s is not a CA certificate", certFile)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("bottle CA key %s: no PEM block", keyFile)
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("bottle CA key %s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("bottle CA key %s does not match certificate %s", keyFile, certFile)
	}
	return &CA{cert: cert, key: key, certPEM: pem.EncodeToMemory(cb)}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

func generateCA() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the bottle CA key: %w", err)
	}
	serial, err := randSerial()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"docker bottle"},
			CommonName:   "docker bottle CA " + shortID(host, now),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the bottle CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the bottle CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// shortID tells CAs of different users and machines apart in trust stores.
func shortID(host string, t time.Time) string {
	h := sha256.Sum256([]byte(host + t.String()))
	return fmt.Sprintf("%x", h[:4])
}

func randSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a certificate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func writeTemp(dir, pattern string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("saving the bottle CA: %w", err)
	}
	name := f.Name()
	// On a failure the temporary file is abandoned: the error reported is
	// the write's, and its Close and removal are only tidying.
	fail := func(err error) (string, error) {
		f.Close()       //nolint:errcheck // see above
		os.Remove(name) //nolint:errcheck // see above
		return "", fmt.Errorf("saving the bottle CA: %w", err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return name, nil
}
