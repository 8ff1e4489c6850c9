package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/probe"
)

// resolver is the system's, or one that asks only cfg.Resolver.
func resolver(cfg probe.Config) *net.Resolver {
	if cfg.Resolver == "" {
		return net.DefaultResolver
	}
	server := cfg.Resolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// dial opens a TCP connection without any proxy, for the direct and
// loopback checks.
func dial(ctx context.Context, cfg probe.Config, kind probe.Kind, target string) probe.Check {
	c := probe.Check{Kind: kind, Target: target, Tried: "a TCP connection to " + target + " without the proxy"}
	if kind == probe.KindLoopback {
		c.Tried = "a TCP connection to " + target + ", a host-loopback port that is not the bundle's"
	}
	d := net.Dialer{Timeout: cfg.DialTimeout.D(), Resolver: resolver(cfg)}
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", target)
	c.Evidence.Elapsed = probe.Millis(time.Since(start))
	if err != nil {
		var de *net.DNSError
		c.Outcome, c.Evidence.Error, c.Evidence.Unresolved = probe.OutcomeFailed, err.Error(), errors.As(err, &de)
		c.Result = "the connection failed (" + dialFailure(err) + ")"
		return c
	}
	c.Evidence.RemoteAddr = conn.RemoteAddr().String()
	conn.Close()
	c.Outcome, c.Result = probe.OutcomeOK, "the connection opened (peer "+c.Evidence.RemoteAddr+")"
	return c
}

// dialFailure names how a connection failed, in a few words.
func dialFailure(err error) string {
	var ne net.Error
	var de *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "not permitted"
	case errors.As(err, &de):
		return "the name did not resolve"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "error"
}

// lookups resolves each name, and a random name under the lookup domain,
// whose only possible answers come from a resolver that forwards anything.
func lookups(ctx context.Context, cfg probe.Config) []probe.Check {
	names := append([]string(nil), cfg.Lookup...)
	names = append(names, "bottle-probe-"+strings.ToLower(rand.Text())+"."+cfg.LookupDomain)
	return each(names, func(name string) probe.Check { return lookup(ctx, cfg, name) })
}

func lookup(ctx context.Context, cfg probe.Config, name string) probe.Check {
	c := probe.Check{Kind: probe.KindLookup, Target: name, Tried: "a DNS lookup of " + name}
	if cfg.Resolver != "" {
		c.Tried += " at " + cfg.Resolver
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	start := time.Now()
	addrs, err := resolver(cfg).LookupHost(ctx, name)
	c.Evidence.Elapsed = probe.Millis(time.Since(start))
	if err == nil && len(addrs) > 0 {
		c.Outcome, c.Evidence.Addrs = probe.OutcomeOK, addrs
		c.Result = "the name resolved"
		return c
	}
	c.Outcome = probe.OutcomeFailed
	var de *net.DNSError
	switch {
	case errors.As(err, &de):
		c.Evidence.Error, c.Evidence.DNSNotFound, c.Evidence.DNSTimeout, c.Evidence.DNSServer = de.Err, de.IsNotFound, de.IsTimeout, de.Server
		if cfg.Resolver != "" {
			// Go names resolv.conf's server even when Dial went elsewhere.
			c.Evidence.DNSServer = cfg.Resolver
		}
		switch {
		case de.IsNotFound:
			c.Result = "the resolver said the name does not exist"
		case de.IsTimeout:
			c.Result = "no answer in time"
		default:
			c.Result = "no useful answer: " + de.Err
		}
	case err != nil:
		c.Evidence.Error = err.Error()
		c.Result = "the lookup failed: " + err.Error()
	default:
		c.Result = "the resolver returned no address"
	}
	return c
}
