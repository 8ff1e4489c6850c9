package testio

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	var b Buffer
	go func() {
		time.Sleep(20 * time.Millisecond) // a writer that comes later, so WaitFor waits
		b.Write([]byte("ready\n"))
	}()
	b.WaitFor(t, "ready", 10*time.Second)

	msg := Failure(t, func(tb testing.TB) { b.WaitFor(tb, "never", 50*time.Millisecond) })
	if !strings.Contains(msg, `no "never" in the output:`) || !strings.Contains(msg, "ready") {
		t.Errorf("WaitFor of what never came: %q", msg)
	}
}

func TestEcho(t *testing.T) {
	c, err := net.Dial("tcp", Echo(t, "hi ").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "there\n")
	if got, err := bufio.NewReader(c).ReadString('\n'); got != "hi there\n" {
		t.Errorf("echo: %q %v", got, err)
	}
}
