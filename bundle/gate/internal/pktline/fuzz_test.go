package pktline

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader reads packets from arbitrary bytes: every packet fits in
// MaxData, the reader consumes at least four bytes a packet (so it ends),
// and every framing error is ErrMalformed.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"0000", "0001", "0002", "0003", "0004", "0009hello0000",
		"0032want 1234567890123456789012345678901234567890\n0000",
		"ffff", "fff0", "zzzz", "00", "0010abc", "0006\x01x0000",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for n := 0; ; n++ {
			if n > len(data)/4+1 {
				t.Fatalf("%d packets from %d bytes", n, len(data))
			}
			k, p, err := r.ReadLine()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("framing error not ErrMalformed: %v", err)
				}
				return
			}
			if len(p) > MaxData || (k != Data && len(p) != 0) {
				t.Fatalf("packet kind %d of %d bytes", k, len(p))
			}
		}
	})
}
