// Package pktline reads and writes git's pkt-line framing: a four-digit hex
// length (counting itself) followed by the payload, plus the special packets
// flush (0000), delim (0001) and response-end (0002), and the side-band
// multiplexing that wraps pack data and progress in packets.
package pktline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

const (
	// MaxLen is the largest packet, length header included (LARGE_PACKET_MAX).
	MaxLen = 65520
	// MaxData is the largest payload of one packet.
	MaxData = MaxLen - 4
)

// Kind says what a packet is.
type Kind int

// The kinds of packet: data, and the special packets 0000, 0001 and 0002.
const (
	Data Kind = iota
	Flush
	Delim
	ResponseEnd
)

// ErrMalformed is wrapped by every framing error, so that a server can answer
// bad input with a clean 400 rather than a generic failure.
var ErrMalformed = errors.New("malformed pkt-line")

// Reader reads packets. The payload returned by Read is only valid until the
// next call.
type Reader struct {
	r   *bufio.Reader
	buf []byte
}

// NewReader reads packets from r. It buffers: bytes after the last packet
// read may already be consumed from r, so use Buffered to continue reading
// the rest of the stream (a pack after the commands of a push).
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, buf: make([]byte, MaxData)}
}

// Buffered returns the underlying buffered reader, positioned right after the
// last packet read.
func (r *Reader) Buffered() *bufio.Reader { return r.r }

// Read returns the next packet. io.EOF is returned only when the stream ends
// cleanly between packets; a stream cut inside a packet is ErrMalformed.
func (r *Reader) Read() (Kind, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: stream ends inside a length header", ErrMalformed)
		}
		return 0, nil, err
	}
	n, ok := parseHex4(hdr)
	if !ok {
		return 0, nil, fmt.Errorf("%w: bad length header %q", ErrMalformed, hdr[:])
	}
	switch n {
	case 0:
		return Flush, nil, nil
	case 1:
		return Delim, nil, nil
	case 2:
		return ResponseEnd, nil, nil
	case 3:
		return 0, nil, fmt.Errorf("%w: invalid length 3", ErrMalformed)
	}
	if n > MaxLen {
		return 0, nil, fmt.Errorf("%w: length %d exceeds %d", ErrMalformed, n, MaxLen)
	}
	p := r.buf[:n-4]
	if _, err := io.ReadFull(r.r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: stream ends inside a packet", ErrMalformed)
		}
		return 0, nil, err
	}
	return Data, p, nil
}

// ReadLine is Read with one trailing LF removed from data packets, as git's
// readers do (PACKET_READ_CHOMP_NEWLINE).
func (r *Reader) ReadLine() (Kind, []byte, error) {
	k, p, err := r.Read()
	if k == Data && len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return k, p, err
}

func parseHex4(b [4]byte) (int, bool) {
	n := 0
	for _, c := range b {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int(v)
	}
	return n, true
}

// Writer writes packets. The first error sticks: later writes do nothing and
// return it, so callers may check only at the end.
type Writer struct {
	w   io.Writer
	err error
	hdr [5]byte
}

// NewWriter writes packets to w. Wrap w in a bufio.Writer when many small
// packets are written.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Err returns the first write error.
func (w *Writer) Err() error { return w.err }

// Write sends p as one data packet; p must fit in MaxData.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > MaxData {
		w.err = fmt.Errorf("pkt-line payload of %d bytes exceeds %d", len(p), MaxData)
		return 0, w.err
	}
	putHex4(w.hdr[:4], len(p)+4)
	if _, w.err = w.w.Write(w.hdr[:4]); w.err != nil {
		return 0, w.err
	}
	if _, w.err = w.w.Write(p); w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Line sends s as one data packet, adding a trailing LF.
func (w *Writer) Line(s string) error {
	b := make([]byte, 0, len(s)+1)
	b = append(b, s...)
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

// Linef formats a line and sends it with a trailing LF.
func (w *Writer) Linef(format string, args ...any) error {
	return w.Line(fmt.Sprintf(format, args...))
}

// Flush sends a flush packet (0000). It does not flush any buffering below.
func (w *Writer) Flush() error { return w.special("0000") }

// Delim sends a delimiter packet (0001).
func (w *Writer) Delim() error { return w.special("0001") }

func (w *Writer) special(s string) error {
	if w.err != nil {
		return w.err
	}
	_, w.err = io.WriteString(w.w, s)
	return w.err
}

// Band returns a writer that sends everything written to it on side-band
// channel band (1 pack data, 2 progress, 3 fatal error), in packets of at
// most maxPacket bytes, length header included: MaxLen for side-band-64k,
// 1000 for side-band.
func (w *Writer) Band(band byte, maxPacket int) io.Writer {
	if maxPacket > MaxLen || maxPacket < 6 {
		maxPacket = MaxLen
	}
	return &bandWriter{w: w, band: band, max: maxPacket - 5}
}

type bandWriter struct {
	w    *Writer
	band byte
	max  int
}

func (b *bandWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		n := min(len(p), b.max)
		if b.w.err != nil {
			return done, b.w.err
		}
		putHex4(b.w.hdr[:4], n+5)
		b.w.hdr[4] = b.band
		if _, b.w.err = b.w.w.Write(b.w.hdr[:5]); b.w.err != nil {
			return done, b.w.err
		}
		if _, b.w.err = b.w.w.Write(p[:n]); b.w.err != nil {
			return done, b.w.err
		}
		done += n
		p = p[n:]
	}
	return done, nil
}

func putHex4(b []byte, n int) {
	const digits = "0123456789abcdef"
	b[0] = digits[(n>>12)&0xf]
	b[1] = digits[(n>>8)&0xf]
	b[2] = digits[(n>>4)&0xf]
	b[3] = digits[n&0xf]
}
