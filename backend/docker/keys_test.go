package docker

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// A read of the user's keys that is in progress when the attach ends is
// cancelled: the next key is left for whoever reads the terminal next.
func TestKeysStopLeavesTheNextKey(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	k, err := newKeys(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("a"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := k.Read(buf); err != nil || string(buf[:n]) != "a" {
		t.Fatalf("a read before stop: %q %v", buf[:n], err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := k.Read(buf)
		done <- err
	}()
	// Whether stop comes before the read or during it, the read ends.
	k.stop()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("the read stopped with %v, want EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read went on after stop")
	}
	if n, err := k.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("a read after stop: %d %v", n, err)
	}

	if _, err := w.WriteString("q"); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "q" {
		t.Errorf("the key after the attach: %q %v, want q", buf[:n], err)
	}
	if err := k.Close(); err != nil {
		t.Error(err)
	}
}
