package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// goHello returns the first flight of Go's TLS client for serverName ("":
// none is sent) as it goes on the wire.
func goHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c := &captureConn{}
	tc := tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == "", NextProtos: []string{"h2", "http/1.1"}})
	tc.Handshake() // fails on the capture's EOF, after the hello
	if len(c.out) == 0 {
		t.Fatal("the TLS client wrote no hello")
	}
	return c.out
}

// captureConn keeps what is written and reads EOF.
type captureConn struct {
	net.Conn
	out []byte
}

func (c *captureConn) Write(b []byte) (int, error)      { c.out = append(c.out, b...); return len(b), nil }
func (c *captureConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// editHello rewrites the extensions of a one-record ClientHello: edit gets
// them in order and returns the new list.
func editHello(t testing.TB, rec []byte, edit func([]helloExt) []helloExt) []byte {
	t.Helper()
	body := rec[5+4:]
	s := cryptobyte.String(body)
	var head []byte
	var sid, suites, comp, exts cryptobyte.String
	if !s.ReadBytes(&head, 34) || !s.ReadUint8LengthPrefixed(&sid) || !s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&comp) || !s.ReadUint16LengthPrefixed(&exts) {
		t.Fatal("cannot parse the test hello")
	}
	var list []helloExt
	for !exts.Empty() {
		var e helloExt
		var data cryptobyte.String
		exts.ReadUint16(&e.typ)
		exts.ReadUint16LengthPrefixed(&data)
		e.data = data
		list = append(list, e)
	}
	list = edit(list)
	var b cryptobyte.Builder
	b.AddBytes(head)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sid) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(suites) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(comp) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range list {
			b.AddUint16(e.typ)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
		}
	})
	return handshakeRecords(b.BytesOrPanic(), maxRecordBytes)
}

type helloExt struct {
	typ  uint16
	data []byte
}

// handshakeRecords wraps a ClientHello body into records of at most size
// bytes each.
func handshakeRecords(body []byte, size int) []byte {
	msg := append([]byte{handshakeHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

func sniExt(names ...string) helloExt {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, n := range names {
			b.AddUint8(serverNameHostName)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
		}
	})
	return helloExt{extServerName, b.BytesOrPanic()}
}

func replaceSNI(list []helloExt, e *helloExt) []helloExt {
	var out []helloExt
	for _, x := range list {
		if x.typ == extServerName {
			if e != nil {
				out = append(out, *e)
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

func TestReadClientHello(t *testing.T) {
	goReal := goHello(t, "api.example.test")
	echExt := helloExt{extECH, []byte{0, 1, 2, 3}}
	two := sniExt("api.example.test", "other.example")
	for _, c := range []struct {
		name    string
		in      []byte
		sni     string
		hasSNI  bool
		ech     bool
		wantErr string
	}{
		{name: "Go's client", in: goReal, sni: "api.example.test", hasSNI: true},
		{name: "no SNI", in: goHello(t, ""), hasSNI: false},
		{name: "nothing", in: nil, wantErr: "EOF"},
		{name: "cut short", in: goReal[:len(goReal)-1], wantErr: "unexpected EOF"},
		{name: "too many records", in: handshakeRecords(goReal[9:], 10), wantErr: "records"},
		{name: "ECH", in: editHello(t, goReal, func(l []helloExt) []helloExt { return append(l, echExt) }), sni: "api.example.test", hasSNI: true, ech: true},
		{name: "ESNI", in: editHello(t, goReal, func(l []helloExt) []helloExt { return append(l, helloExt{extESNI, nil}) }), sni: "api.example.test", hasSNI: true, ech: true},
		{name: "two names", in: editHello(t, goReal, func(l []helloExt) []helloExt { return replaceSNI(l, &two) }), wantErr: "holds 2 names"},
		{name: "SNI twice", in: editHello(t, goReal, func(l []helloExt) []helloExt { return append(l, sniExt("other.example")) }), wantErr: "extension 0 twice"},
		{name: "not TLS", in: []byte("GET / HTTP/1.1\r\n\r\n"), wantErr: errNotTLS.Error()},
		{name: "not TLS, short", in: []byte{0x16, 0x00}, wantErr: errNotTLS.Error()},
		{name: "huge hello", in: []byte{0x16, 3, 1, 0, 4, handshakeHello, 0xff, 0xff, 0xff}, wantErr: "larger than"},
		{name: "huge record", in: []byte{0x16, 3, 1, 0x40, 0x01}, wantErr: "not a valid ClientHello record"},
		{name: "not a hello", in: []byte{0x16, 3, 1, 0, 4, 2, 0, 0, 0}, wantErr: "not a ClientHello"},
		{name: "application data after a first record", in: append(handshakeRecords(make([]byte, 100), 50)[:55], 0x17, 3, 3, 0, 1, 0), wantErr: "another kind"},
	} {
		raw, h, err := readClientHello(bytes.NewReader(c.in))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if h.serverName != c.sni || h.hasSNI != c.hasSNI || h.ech != c.ech {
			t.Errorf("%s: %+v, want SNI %q (%v) ECH %v", c.name, h, c.sni, c.hasSNI, c.ech)
		}
		if !bytes.Equal(raw, c.in) {
			t.Errorf("%s: read %d bytes, want all %d", c.name, len(raw), len(c.in))
		}
	}
	// A hello split over records is read whole, and not a byte more: what
	// follows belongs to the tunnel.
	body := goReal[9:]
	split := handshakeRecords(body, (len(body)+4)/maxHelloRecords+1)
	r := bytes.NewReader(append(split, "early"...))
	raw, h, err := readClientHello(r)
	if err != nil || h.serverName != "api.example.test" || !bytes.Equal(raw, split) || r.Len() != len("early") {
		t.Errorf("split hello: %+v %v, read %d of %d bytes, %d left", h, err, len(raw), len(split), r.Len())
	}
}

func TestSNIRefusal(t *testing.T) {
	for _, c := range []struct {
		h     clientHello
		host  string
		noSNI bool
		want  string
	}{
		{clientHello{serverName: "api.example.test", hasSNI: true}, "api.example.test", false, ""},
		{clientHello{serverName: "API.Example.TEST", hasSNI: true}, "api.example.test", false, ""},
		{clientHello{serverName: "api.example.test.", hasSNI: true}, "api.example.test", false, "names the server"},
		{clientHello{serverName: "other.example", hasSNI: true}, "api.example.test", false, `names the server "other.example"`},
		{clientHello{serverName: "other.example", hasSNI: true}, "api.example.test", true, `names the server "other.example"`},
		{clientHello{}, "api.example.test", false, "allow_no_sni"},
		{clientHello{}, "api.example.test", true, ""},
		{clientHello{}, "203.0.113.5", false, ""},
		{clientHello{serverName: "203.0.113.5", hasSNI: true}, "203.0.113.5", false, ""},
		{clientHello{serverName: "cdn.example", hasSNI: true}, "203.0.113.5", false, "names the server"},
		{clientHello{serverName: "api.example.test", hasSNI: true, ech: true}, "api.example.test", false, "Encrypted Client Hello"},
		{clientHello{ech: true}, "api.example.test", true, "Encrypted Client Hello"},
	} {
		got := sniRefusal(c.h, c.host, c.noSNI)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("sniRefusal(%+v, %s, %v) = %q, want %q", c.h, c.host, c.noSNI, got, c.want)
		}
	}
}

// goServerName is the server name Go's own TLS server reads from a
// ClientHello, for the fuzz target to compare with.
func goServerName(raw []byte) (string, bool) {
	var name string
	var ok bool
	stop := errors.New("stop")
	c := &replayConn{r: bytes.NewReader(raw)}
	tls.Server(c, &tls.Config{GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		name, ok = chi.ServerName, true
		return nil, stop
	}}).Handshake()
	return name, ok
}

type replayConn struct {
	captureConn
	r *bytes.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// FuzzClientHello checks the ClientHello peek on any bytes: it never reads
// more than the records it judges, never more than its bound, and where Go's
// TLS server also accepts the hello, both read the same server name.
func FuzzClientHello(f *testing.F) {
	for _, n := range []string{"api.example.test", "", "xn--nxasmq6b.example", "203.0.113.5"} {
		f.Add(goHello(f, n))
	}
	goReal := goHello(f, "api.example.test")
	f.Add(handshakeRecords(goReal[9:], 100))
	f.Add(editHello(f, goReal, func(l []helloExt) []helloExt { return append(l, helloExt{extECH, []byte{1}}) }))
	two := sniExt("a.test", "b.test")
	f.Add(editHello(f, goReal, func(l []helloExt) []helloExt { return replaceSNI(l, &two) }))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 3, 1, 0, 4, handshakeHello, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		raw, h, err := readClientHello(r)
		if !bytes.HasPrefix(data, raw) || len(raw)+r.Len() != len(data) {
			t.Fatalf("raw is not the bytes read: %d raw, %d left of %d", len(raw), r.Len(), len(data))
		}
		if len(raw) > maxHelloRecords*5+4+maxHelloBytes+maxRecordBytes {
			t.Fatalf("read %d bytes, beyond the bound", len(raw))
		}
		if err != nil {
			return
		}
		if name, ok := goServerName(raw); ok && name != h.serverName {
			t.Fatalf("Go's TLS server reads server name %q, the proxy %q (hasSNI %v)", name, h.serverName, h.hasSNI)
		}
	})
}
