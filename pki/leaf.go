package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

const (
	// leafValidity is short: leaves are minted on demand and cached only in
	// memory, so nothing is gained by making them last.
	leafValidity = 7 * 24 * time.Hour
	// leafRenewBefore re-mints a cached leaf this long before it expires.
	leafRenewBefore = time.Hour
	// DefaultMaxLeaves bounds the leaf cache when NewMinter is given none.
	DefaultMaxLeaves = 1024
)

// Minter mints leaf certificates signed by a CA, one per host, and caches
// them. It is safe for concurrent use; concurrent requests for one host mint
// once and share the result.
type Minter struct {
	ca  *CA
	key *ecdsa.PrivateKey
	max int
	now func() time.Time

	mu     sync.Mutex
	leaves map[string]*leafEntry
}

type leafEntry struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// NewMinter returns a Minter for ca. All leaves share one key made here: the
// key lives only in this process's memory, next to the CA key that could
// sign anything anyway. maxLeaves <= 0 means DefaultMaxLeaves.
func NewMinter(ca *CA, maxLeaves int) (*Minter, error) {
	if ca == nil {
		return nil, errors.New("pki: NewMinter needs a CA")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the leaf certificate key: %w", err)
	}
	if maxLeaves <= 0 {
		maxLeaves = DefaultMaxLeaves
	}
	return &Minter{ca: ca, key: key, max: maxLeaves, now: time.Now, leaves: map[string]*leafEntry{}}, nil
}

// CA returns the CA the minter signs with.
func (m *Minter) CA() *CA { return m.ca }

// Leaf returns a certificate for host (a DNS name or an IP literal), with the
// CA certificate in its chain.
func (m *Minter) Leaf(host string) (*tls.Certificate, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return nil, errors.New("pki: cannot mint a certificate for an empty host name")
	}
	for {
		m.mu.Lock()
		e, ok := m.leaves[host]
		if !ok {
			if len(m.leaves) >= m.max {
				m.evictLocked()
			}
			e = &leafEntry{done: make(chan struct{})}
			m.leaves[host] = e
			m.mu.Unlock()
			e.cert, e.err = m.mint(host)
			close(e.done)
			if e.err != nil {
				m.forget(host, e)
			}
			return e.cert, e.err
		}
		m.mu.Unlock()
		<-e.done
		if e.err != nil {
			return nil, e.err
		}
		if m.now().Add(leafRenewBefore).Before(e.cert.Leaf.NotAfter) {
			return e.cert, nil
		}
		m.forget(host, e)
	}
}

// forget drops e from the cache unless another goroutine already replaced it.
func (m *Minter) forget(host string, e *leafEntry) {
	m.mu.Lock()
	if m.leaves[host] == e {
		delete(m.leaves, host)
	}
	m.mu.Unlock()
}

// evictLocked drops finished entries until the cache has room. Map order is
// random, which is good enough for a cache that rarely fills: a bottle talks
// to few intercepted hosts.
func (m *Minter) evictLocked() {
	for h, e := range m.leaves {
		if len(m.leaves) < m.max {
			return
		}
		select {
		case <-e.done:
			delete(m.leaves, h)
		default:
		}
	}
}

func (m *Minter) mint(host string) (*tls.Certificate, error) {
	serial, err := randSerial()
	if err != nil {
		return nil, err
	}
	now := m.now()
	notAfter := now.Add(leafValidity)
	if notAfter.After(m.ca.cert.NotAfter) {
		notAfter = m.ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"docker bottle"}, CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca.cert, m.key.Public(), m.ca.key)
	if err != nil {
		return nil, fmt.Errorf("minting a certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("minting a certificate for %s: %w", host, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, m.ca.cert.Raw},
		PrivateKey:  m.key,
		Leaf:        leaf,
	}, nil
}
