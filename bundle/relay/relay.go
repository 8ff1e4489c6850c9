// Package relay carries inbound connections from the host to ports the
// agent listens on (`docker bottle run -p`): the agent of the docker
// backend sits on an internal network whose published ports the engine
// drops, so the bundle, on both networks, listens on a pool of published
// ports and forwards each connection to the agent's port its map names.
//
// Inbound only: the relay dials nothing but the targets the map names, and
// the map is a file in the stage dir that only the host writes (the agent
// cannot reach it). A pool port the map does not name refuses at once, so
// a bottle publishes exactly its declared ports. The map is read at each
// connection, so `docker bottle port NAME PORT` adds a port to a running
// bottle by writing it.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/listen"
)

// Config is the relay's part of the bundle configuration.
type Config struct {
	// Listen are the pool's addresses in the bundle (":21000", ...), each
	// published on the host's loopback.
	Listen []string `json:"listen"`
	// MapFile maps a pool port (as a string) to the agent's address
	// ("host:port") it forwards to: {"21000": "agent:3000"}.
	MapFile string `json:"map_file"`
	Bottle  string `json:"bottle"`
	// AuditFile receives one line per inbound connection.
	AuditFile string `json:"audit_file,omitempty"`
}

// Bounds of the relay.
const (
	maxMapBytes  = 64 << 10
	maxConns     = 128
	maxPerClient = 64
	dialTimeout  = 5 * time.Second
	// writeStall ends a relayed connection whose reader stopped reading.
	writeStall = 2 * time.Minute
	// closeGrace is how long a client may go on sending after the agent
	// closed its side.
	closeGrace = 10 * time.Second
)

// Map is what MapFile holds.
type Map map[string]string

// ReadMap reads a map file; a missing file is an empty map.
func ReadMap(path string) (Map, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Map{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // only read
	b, err := io.ReadAll(io.LimitReader(f, maxMapBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMapBytes {
		return nil, fmt.Errorf("relay map %s is larger than %d bytes", path, maxMapBytes)
	}
	m := Map{}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("relay map %s: %w", path, err)
	}
	return m, nil
}

// Relay forwards inbound connections.
type Relay struct {
	cfg    Config
	audit  *audit.Logger
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// New makes a relay writing one audit line per connection to a (nil
// discards).
func New(cfg Config, a *audit.Logger) *Relay {
	d := &net.Dialer{Timeout: dialTimeout}
	return &Relay{cfg: cfg, audit: a, dial: d.DialContext, lookup: net.DefaultResolver.LookupNetIP}
}

type record struct {
	Daemon   string  `json:"daemon"`
	Event    string  `json:"event"`
	Bottle   string  `json:"bottle"`
	Client   string  `json:"client"`
	Port     int     `json:"port"`
	Target   string  `json:"target,omitempty"`
	Decision string  `json:"decision"`
	Reason   string  `json:"reason,omitempty"`
	BytesIn  int64   `json:"bytes_up,omitempty"`
	BytesOut int64   `json:"bytes_down,omitempty"`
	Duration float64 `json:"duration_ms,omitempty"`
}

// Serve relays the connections of one pool listener until ctx ends.
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	port := 0
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	lim := listen.Limit(ln, listen.Limits{MaxConns: maxConns, MaxPerClient: maxPerClient, WriteStall: writeStall})
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { lim.Close() })
	defer stop()
	for {
		c, err := lim.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.relay(ctx, c, port)
		}()
	}
}

func (r *Relay) relay(ctx context.Context, c net.Conn, port int) {
	defer c.Close()
	// A relayed connection is busy for its whole life: the caps refuse a
	// newcomer rather than cut a live one.
	defer listen.Busy(c)()
	start := time.Now()
	rec := &record{Daemon: "relay", Event: "inbound", Bottle: r.cfg.Bottle, Client: c.RemoteAddr().String(), Port: port}
	defer func() {
		rec.Duration = float64(time.Since(start).Microseconds()) / 1000
		r.audit.Write(rec) //nolint:errcheck // the relay works on when its audit file fails
	}()
	m, err := ReadMap(r.cfg.MapFile)
	if err != nil {
		rec.Decision, rec.Reason = "error", err.Error()
		return
	}
	target := m[strconv.Itoa(port)]
	if target == "" {
		rec.Decision, rec.Reason = "deny", "no agent port is published on this relay port"
		return
	}
	rec.Target = target
	addr, err := r.resolve(ctx, target, c.RemoteAddr())
	if err != nil {
		rec.Decision, rec.Reason = "deny", err.Error()
		return
	}
	up, err := r.dial(ctx, "tcp", addr)
	if err != nil {
		rec.Decision, rec.Reason = "error", "the agent does not accept connections on "+target+": "+err.Error()
		return
	}
	defer up.Close()
	rec.Decision = "allow"
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(up, c)
		closeWrite(up)
		done <- n
	}()
	rec.BytesOut, _ = io.Copy(c, up)
	closeWrite(c)
	// The agent's side is done: a client that sends nothing more does not
	// hold the connection open.
	c.SetReadDeadline(time.Now().Add(closeGrace)) //nolint:errcheck // closed below at the latest
	rec.BytesIn = <-done
}

// resolve finds target's address, and refuses a client that is the target
// itself: the agent connecting to the relay from inside the bottle would
// only reach itself, and its allowed lines could crowd the audit's record
// of what was let through.
func (r *Relay) resolve(ctx context.Context, target string, client net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", fmt.Errorf("relay target %q: %w", target, err)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ips, err := r.lookup(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("the agent's address %s is not known: %v", host, err)
	}
	if ta, ok := client.(*net.TCPAddr); ok {
		if from, ok := netip.AddrFromSlice(ta.IP); ok {
			for _, ip := range ips {
				if ip.Unmap() == from.Unmap() {
					return "", errors.New("the relay takes connections from the host only")
				}
			}
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() //nolint:errcheck // the peer may be gone already
		return
	}
	c.Close()
}
