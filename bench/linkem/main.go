// Command linkem emulates a network link between the host and a network
// namespace: a fixed one-way delay and a rate limit, each way, with tail drop
// beyond a queue bound. bench/proxy.sh uses it to put the proxy benchmark's
// upstream behind a link like a user's, because this kernel has no netem
// (tc qdiscs here: tbf, htb, pfifo).
//
// It makes a TUN device on each side (host: -host-dev with -host-ip, the
// namespace: -ns-dev with -ns-ip, a point-to-point /32 pair), and relays
// packets between them after the delay. The devices take and give whole TCP
// segmentation-offload packets (virtio-net headers), so at 1 Gbit/s the relay
// handles a few thousand packets a second rather than a hundred thousand,
// and the link costs little CPU next to what it carries. The devices vanish
// when the process ends.
//
// Usage: linkem -ns NAME -rate-mbit 1000 -delay 2ms; it prints "ready" when
// both sides are configured and runs until killed.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	nsName  = flag.String("ns", "", "network namespace (made beforehand, e.g. by ip netns add)")
	hostDev = flag.String("host-dev", "lkh0", "TUN device on the host side")
	nsDev   = flag.String("ns-dev", "lkn0", "TUN device in the namespace")
	hostIP  = flag.String("host-ip", "10.231.1.1", "host side address")
	nsIP    = flag.String("ns-ip", "10.231.1.2", "namespace side address")
	rate    = flag.Float64("rate-mbit", 1000, "link rate each way in Mbit/s (0: unlimited)")
	delay   = flag.Duration("delay", 2*time.Millisecond, "one-way delay (RTT is twice this)")
	queue   = flag.Duration("queue", 0, "drop a packet that would wait longer than this for the link (0: 2*RTT, at least 5ms)")
)

const vnetHdrLen = 10 // struct virtio_net_hdr

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("linkem: ")
	if *nsName == "" {
		log.Fatal("-ns is required")
	}
	if *queue == 0 {
		*queue = max(4**delay, 5*time.Millisecond)
	}
	host, err := openTun(*hostDev, "")
	if err != nil {
		log.Fatal(err)
	}
	ns, err := openTun(*nsDev, *nsName)
	if err != nil {
		log.Fatal(err)
	}
	for _, args := range [][]string{
		{"addr", "add", *hostIP, "peer", *nsIP, "dev", *hostDev},
		{"link", "set", *hostDev, "up"},
		{"-n", *nsName, "addr", "add", *nsIP, "peer", *hostIP, "dev", *nsDev},
		{"-n", *nsName, "link", "set", *nsDev, "up"},
		{"-n", *nsName, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			log.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	var drops [2]atomic.Uint64
	go relay(host, ns, &drops[0])
	go relay(ns, host, &drops[1])
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Fprintf(os.Stderr, "linkem: dropped %d packets host->ns, %d ns->host\n", drops[0].Load(), drops[1].Load())
}

// openTun makes a TUN device named name that passes offload packets, in the
// network namespace ns (the current one when empty).
func openTun(name, ns string) (*os.File, error) {
	if ns != "" {
		// A TUN device is made in the namespace of the thread that makes it;
		// the thread goes back afterwards, or dies with its namespace.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening namespace %s: %w", ns, err)
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			return nil, fmt.Errorf("entering namespace %s: %w", ns, err)
		}
		defer func() {
			if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("making TUN device %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		return nil, fmt.Errorf("enabling offloads on %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

type packet struct {
	b   []byte
	due time.Time
}

var pool = sync.Pool{New: func() any { b := make([]byte, 65535+vnetHdrLen); return &b }}

// relay moves packets from src to dst: each leaves the link's sender when
// the link has serialised the ones before it (the rate), and arrives the
// delay later. A packet that would queue longer than the bound is dropped,
// as a router's full buffer would.
func relay(src, dst *os.File, drops *atomic.Uint64) {
	q := make(chan packet, 16384)
	go func() {
		for p := range q {
			if d := time.Until(p.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(p.b); err != nil && err != syscall.EINVAL {
				log.Printf("writing to %s: %v", dst.Name(), err)
			}
			b := p.b[:cap(p.b)]
			pool.Put(&b)
		}
	}()
	var free time.Time // when the link finishes sending what it holds
	for {
		bp := pool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if err != nil {
			log.Fatalf("reading from %s: %v", src.Name(), err)
		}
		now := time.Now()
		start := now
		if free.After(now) {
			start = free
		}
		if start.Sub(now) > *queue {
			drops.Add(1)
			pool.Put(bp)
			continue
		}
		sent := start
		if *rate > 0 {
			sent = start.Add(time.Duration(float64(wireBytes((*bp)[:n])) * 8 / (*rate * 1e6) * float64(time.Second)))
		}
		free = sent
		select {
		case q <- packet{b: (*bp)[:n], due: sent.Add(*delay)}:
		default:
			drops.Add(1)
			pool.Put(bp)
		}
	}
}

// wireBytes is the IP bytes a packet (with its virtio-net header) takes on
// the link once segmented: one header per segment.
func wireBytes(b []byte) int {
	if len(b) < vnetHdrLen {
		return len(b)
	}
	n := len(b) - vnetHdrLen
	hdrLen := int(binary.LittleEndian.Uint16(b[2:]))
	gsoSize := int(binary.LittleEndian.Uint16(b[4:]))
	if b[1] == 0 || gsoSize == 0 || hdrLen == 0 || hdrLen >= n {
		return n
	}
	segs := (n - hdrLen + gsoSize - 1) / gsoSize
	return n + (segs-1)*hdrLen
}
