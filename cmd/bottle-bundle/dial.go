package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// Bounds of one dial: how long connecting may take, and how long the far
// side may go on after the near side closed its half (nothing the plugin
// speaks half-closes and then waits for long; a client that died must not
// leave the dial running in the bundle).
const (
	dialConnectTimeout = 10 * time.Second
	dialHalfCloseGrace = time.Minute
)

// runDial is `bottle-bundle dial HOST:PORT`: it connects to HOST:PORT from
// the container's network namespace, says so on stderr
// (guest.DialReadyMarker) and then copies stdin to the connection and the
// connection to stdout. It ends when the far side closes, or a grace time
// after stdin ends.
func runDial(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bottle-bundle dial HOST:PORT")
	}
	return dial(ctx, args[0], os.Stdin, os.Stdout, os.Stderr, dialConnectTimeout, dialHalfCloseGrace)
}

func dial(ctx context.Context, addr string, in io.Reader, out, status io.Writer, timeout, grace time.Duration) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	defer conn.Close() //nolint:errcheck // the copies said how the connection ended
	// A signal ends the copies.
	stop := context.AfterFunc(ctx, func() { conn.Close() }) //nolint:errcheck,gosec // ending the copies
	defer stop()
	if _, err := io.WriteString(status, guest.DialReadyMarker); err != nil {
		return err
	}

	go func() {
		_, err := io.Copy(conn, in)
		if err != nil {
			conn.Close() //nolint:errcheck,gosec // the near side failed: end both halves
			return
		}
		// The near side is done: the far side learns it, and has the
		// grace time to finish its answer.
		conn.CloseWrite()                           //nolint:errcheck,gosec // the far side may have closed already
		conn.SetReadDeadline(time.Now().Add(grace)) //nolint:errcheck,gosec // a closed conn ends the copy anyway
	}()
	if _, err := io.Copy(out, conn); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
