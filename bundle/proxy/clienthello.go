package proxy

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// A raw tunnel is spliced, not intercepted, so the only thing the proxy can
// hold it to is the first flight of TLS: the ClientHello must name the host
// the CONNECT named. Otherwise an allowed name on a shared CDN front end
// would carry the agent to any other tenant of that CDN (domain fronting).

// maxHelloBytes bounds the ClientHello message the proxy reads before it
// lets a tunnel through. Real ones are a few KiB (post-quantum key shares
// included).
const maxHelloBytes = 32 << 10

// maxRecordBytes is TLS's own bound on a plaintext record (RFC 8446 5.1).
const maxRecordBytes = 1 << 14

// maxHelloRecords bounds the records a ClientHello may be split into (one
// in practice), so that tiny records cannot multiply what the peek holds.
const maxHelloRecords = 16

// TLS numbers the peek reads (RFC 8446, RFC 6066, draft-ietf-tls-esni).
const (
	recordHandshake    = 0x16
	handshakeHello     = 1
	extServerName      = 0
	extECH             = 0xfe0d
	extESNI            = 0xffce // the ECH drafts' predecessor
	serverNameHostName = 0
)

// clientHello is what the proxy reads of a ClientHello.
type clientHello struct {
	serverName string // the host_name of the server_name extension, as sent
	hasSNI     bool
	ech        bool // encrypted_client_hello (or ESNI): the real name is hidden
}

// errNotTLS says a tunnel's first bytes are not a TLS handshake record.
var errNotTLS = errors.New("the tunnel does not start with a TLS handshake")

// readClientHello reads the records that carry a ClientHello from r and
// returns them as read (to be passed on) and what they say. It reads no
// byte past the last of those records, and at most maxHelloBytes of
// message plus record headers.
func readClientHello(r io.Reader) (raw []byte, h clientHello, err error) {
	var msg []byte
	for records := 0; ; records++ {
		if records == maxHelloRecords {
			return raw, h, fmt.Errorf("the TLS ClientHello is split over more than %d records", maxHelloRecords)
		}
		var hdr [5]byte
		got, err := io.ReadFull(r, hdr[:])
		raw = append(raw, hdr[:got]...)
		if got >= 1 && hdr[0] != recordHandshake || got >= 2 && hdr[1] != 3 {
			if len(msg) == 0 {
				return raw, h, errNotTLS
			}
			return raw, h, errors.New("the TLS ClientHello is cut short by a record of another kind")
		}
		if err != nil {
			return raw, h, fmt.Errorf("reading the TLS ClientHello: %w", err)
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > maxRecordBytes {
			return raw, h, fmt.Errorf("a TLS record of %d bytes is not a valid ClientHello record", n)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if got, err := io.ReadFull(r, raw[start:]); err != nil {
			return raw[:start+got], h, fmt.Errorf("reading the TLS ClientHello: %w", err)
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeHello {
			return raw, h, fmt.Errorf("the first TLS handshake message is of type %d, not a ClientHello", msg[0])
		}
		size := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if size > maxHelloBytes {
			return raw, h, fmt.Errorf("a TLS ClientHello of %d bytes is larger than the %d the proxy reads", size, maxHelloBytes)
		}
		if len(msg) < 4+size {
			continue
		}
		if len(msg) > 4+size {
			return raw, h, errors.New("the TLS ClientHello's records carry more than the ClientHello")
		}
		h, err = parseClientHello(msg[4:])
		return raw, h, err
	}
}

// parseClientHello reads the body of a ClientHello handshake message
// (RFC 8446 4.1.2, which TLS 1.2 hellos also fit). An extension present
// twice, or a server_name with other than exactly one host name, is an
// error: servers would disagree on which one counts.
func parseClientHello(body []byte) (clientHello, error) {
	var h clientHello
	s := cryptobyte.String(body)
	var sessionID, suites, compression cryptobyte.String
	if !s.Skip(2+32) || // legacy_version, random
		!s.ReadUint8LengthPrefixed(&sessionID) || len(sessionID) > 32 ||
		!s.ReadUint16LengthPrefixed(&suites) || len(suites) == 0 || len(suites)%2 != 0 ||
		!s.ReadUint8LengthPrefixed(&compression) || len(compression) == 0 {
		return h, errors.New("the TLS ClientHello is malformed")
	}
	if s.Empty() {
		return h, nil // no extensions (an old TLS 1.2 client): no name
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return h, errors.New("the TLS ClientHello's extensions are malformed")
	}
	seen := map[uint16]bool{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, errors.New("the TLS ClientHello's extensions are malformed")
		}
		if seen[typ] {
			return h, fmt.Errorf("the TLS ClientHello carries extension %d twice", typ)
		}
		seen[typ] = true
		switch typ {
		case extECH, extESNI:
			h.ech = true
		case extServerName:
			name, err := parseServerName(data)
			if err != nil {
				return h, err
			}
			h.serverName, h.hasSNI = name, true
		}
	}
	return h, nil
}

func parseServerName(data cryptobyte.String) (string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return "", errors.New("the TLS server_name extension is malformed")
	}
	var name string
	n := 0
	for !list.Empty() {
		var typ uint8
		var host cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&host) {
			return "", errors.New("the TLS server_name extension is malformed")
		}
		if typ != serverNameHostName {
			return "", fmt.Errorf("the TLS server_name extension holds a name of unknown type %d", typ)
		}
		name = string(host)
		n++
	}
	if n != 1 {
		return "", fmt.Errorf("the TLS server_name extension holds %d names, not one", n)
	}
	return name, nil
}

// sniRefusal says why a tunnel to host, whose TLS ClientHello is h, may
// not pass, or returns "". A host named by its IP address is reached without
// a name (TLS clients send none for an address); a name must be sent, and be
// host's, unless the rule allows none (noSNI).
func sniRefusal(h clientHello, host string, noSNI bool) string {
	ipHost := isIPLiteral(host)
	switch {
	case h.ech:
		return fmt.Sprintf("the TLS ClientHello to %s carries Encrypted Client Hello, which hides the server it asks for; the bottle's egress proxy refuses it (turn ECH off in the client)", host)
	case !h.hasSNI && (ipHost || noSNI):
		return ""
	case !h.hasSNI:
		return fmt.Sprintf("the TLS ClientHello to %s names no server (SNI); the bottle's egress proxy needs it to be %s, or a rule for the host with allow_no_sni: true", host, host)
	case strings.ToLower(h.serverName) != host:
		return fmt.Sprintf("the TLS ClientHello names the server %q, not %s which the CONNECT asked for and the rules allow", h.serverName, host)
	}
	return ""
}
