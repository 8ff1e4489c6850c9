package pktline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Line("want abc")
	w.Delim()
	w.Write([]byte("raw"))
	w.Flush()
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "000dwant abc\n00010007raw0000" {
		t.Fatalf("encoded %q", got)
	}
	r := NewReader(&b)
	for _, want := range []struct {
		k Kind
		p string
	}{{Data, "want abc"}, {Delim, ""}, {Data, "raw"}, {Flush, ""}} {
		k, p, err := r.ReadLine()
		if err != nil || k != want.k || string(p) != want.p {
			t.Fatalf("got %v %q %v, want %v %q", k, p, err, want.k, want.p)
		}
	}
	if _, _, err := r.Read(); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{"00", "zzzz", "0003", "ffff", "0010short", "fff0" + strings.Repeat("x", 10)} {
		_, _, err := NewReader(strings.NewReader(in)).Read()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", in, err)
		}
	}
}

func TestBandSplits(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	data := bytes.Repeat([]byte("x"), 2500)
	if _, err := w.Band(2, 1000).Write(data); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&b)
	total := 0
	for {
		k, p, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil || k != Data || p[0] != 2 || len(p) > 1000-4 {
			t.Fatalf("packet %v %d %v", k, len(p), err)
		}
		total += len(p) - 1
	}
	if total != len(data) {
		t.Fatalf("carried %d bytes, want %d", total, len(data))
	}
	if _, err := w.Write(make([]byte, MaxData+1)); err == nil {
		t.Errorf("oversized packet accepted")
	}
}
