package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// listen serves each connection with serve on a loopback port.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// The far side gets the near side's bytes and then its end (a half
// close), and its answer after that still comes back: the copy is a
// stream in both directions, and the marker comes first on stderr.
func TestDialCopiesBothWaysAndHalfCloses(t *testing.T) {
	addr := listen(t, func(c net.Conn) {
		got, _ := io.ReadAll(c) // until the near side's half close
		io.WriteString(c, "got "+string(got))
	})
	var out, status bytes.Buffer
	err := dial(context.Background(), addr, strings.NewReader("hello"), &out, &status, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "got hello" {
		t.Errorf("stdout %q, want %q", out.String(), "got hello")
	}
	if status.String() != guest.DialReadyMarker {
		t.Errorf("stderr %q, want only the ready marker", status.String())
	}
}

// A refused connection is an error, and nothing says it connected.
func TestDialRefusedSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var status bytes.Buffer
	err = dial(context.Background(), addr, strings.NewReader(""), io.Discard, &status, time.Second, time.Second)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial to a closed port: %v, want connection refused", err)
	}
	if status.Len() != 0 {
		t.Errorf("stderr %q after a failed dial", status.String())
	}
	for _, bad := range []string{"", "nohost", "1.2.3.4:5:6"} {
		if err := dial(context.Background(), bad, nil, io.Discard, io.Discard, time.Second, time.Second); err == nil {
			t.Errorf("dial %q: no error", bad)
		}
	}
}

// A far side that never answers holds the dial only as long as the
// context, and after the near side ended only for the grace time.
func TestDialIsBounded(t *testing.T) {
	silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c); time.Sleep(time.Hour) })

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	inR, inW := io.Pipe()
	defer inW.Close()
	start := time.Now()
	if err := dial(ctx, silent, inR, io.Discard, io.Discard, time.Second, time.Hour); err != nil {
		t.Errorf("dial ended by its context: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cancelled dial took %v", d)
	}

	start = time.Now()
	err := dial(context.Background(), silent, strings.NewReader("x"), io.Discard, io.Discard, time.Second, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("dial after stdin ended, far side silent: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the grace time of 200ms took %v", d)
	}
}
