// Package agent is the probe agent: it plays the agent inside a bottle,
// tries every way out, and reports what happened (probe.Report). It runs as
// `bottle-bundle probe`, a static binary with no shell and no git beside
// it, so git is spoken with go-git. The plugin imports the probe package
// (the report and the judge), never this one.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-bottle/docker-bottle/probe"
)

// Main runs the probe with a command line and prints the report on stdout.
// It returns an error only when it could not run at all (bad flags); what
// the checks find is in the report.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := probe.ParseArgs(args, stderr, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	r := Run(ctx, cfg, os.Environ())
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// Run tries everything cfg says, concurrently, and returns the report, its
// checks in the order of probe.Kinds. environ is the environment searched
// for secrets (os.Environ in the probe); cfg must be complete (WithEnv).
func Run(ctx context.Context, cfg probe.Config, environ []string) probe.Report {
	start := time.Now()
	getenv := envLookup(environ)
	r := probe.Report{Version: probe.ReportVersion, Started: start.UTC(), Bottle: getenv("BOTTLE_NAME"), Branch: cfg.Branch,
		EnvNames: []string{}}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		r.EnvNames = append(r.EnvNames, name)
	}
	slices.Sort(r.EnvNames)
	token, tokenErr := readToken(cfg.TokenFile)
	pc, proxyErr := newProxyClient(cfg)

	viaProxy := func(kind probe.Kind, targets []string) func() []probe.Check {
		return func() []probe.Check {
			return each(targets, func(t string) probe.Check {
				switch {
				case proxyErr != nil:
					return probe.Check{Kind: kind, Target: t, Tried: "GET " + t + " through the egress proxy",
						Outcome: probe.OutcomeError, Result: proxyErr.Error()}
				case tokenErr != nil:
					return probe.Check{Kind: kind, Target: t, Tried: "GET " + t + " through the egress proxy",
						Outcome: probe.OutcomeError, Result: tokenErr.Error()}
				}
				return pc.check(ctx, kind, t, token)
			})
		}
	}
	dials := func(kind probe.Kind, targets []string) func() []probe.Check {
		return func() []probe.Check {
			return each(targets, func(t string) probe.Check { return dial(ctx, cfg, kind, t) })
		}
	}
	groups := []func() []probe.Check{
		viaProxy(probe.KindAllowed, cfg.Allowed),
		viaProxy(probe.KindUnlisted, cfg.Unlisted),
		dials(probe.KindDirect, cfg.Direct),
		func() []probe.Check { return lookups(ctx, cfg) },
		dials(probe.KindLoopback, cfg.Loopback),
		func() []probe.Check { return []probe.Check{secretsCheck(cfg, environ, getenv)} },
		func() []probe.Check { return gitChecks(ctx, cfg, token, tokenErr) },
		func() []probe.Check { return superviseChecks(ctx, cfg, r.Bottle, token, tokenErr) },
		func() []probe.Check {
			target := noTokenTarget(cfg)
			if proxyErr != nil {
				return []probe.Check{{Kind: probe.KindProxyNoToken, Target: target, Tried: "CONNECT " + target + " without a token",
					Outcome: probe.OutcomeError, Result: proxyErr.Error()}}
			}
			return []probe.Check{pc.noToken(ctx, target)}
		},
		func() []probe.Check { return hardeningChecks(procStatus, cfg.Root) },
	}
	results := make([][]probe.Check, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g()
		}()
	}
	wg.Wait()
	for _, res := range results {
		r.Checks = append(r.Checks, res...)
	}
	// The report's order is probe.Kinds, then the targets as given,
	// whatever order the groups above are listed in.
	order := map[probe.Kind]int{}
	for i, k := range probe.Kinds {
		order[k] = i
	}
	slices.SortStableFunc(r.Checks, func(a, b probe.Check) int { return order[a.Kind] - order[b.Kind] })
	r.Duration = probe.Millis(time.Since(start))
	return r
}

// each runs fn for every target concurrently, keeping the targets' order.
func each(targets []string, fn func(string) probe.Check) []probe.Check {
	out := make([]probe.Check, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = fn(t)
		}()
	}
	wg.Wait()
	return out
}

// noTokenTarget is a host the proxy allows (so that only the missing token
// can be the reason for a refusal), else an unlisted one.
func noTokenTarget(cfg probe.Config) string {
	for _, list := range [][]string{cfg.Allowed, cfg.Unlisted} {
		for _, raw := range list {
			if u, err := url.Parse(raw); err == nil && u.Host != "" {
				return hostPort(u)
			}
		}
	}
	return net.JoinHostPort(probe.DefaultLookupDomain, "443")
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("no token file: $BOTTLE_TOKEN_FILE is empty and --token-file was not given")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the bottle's token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("the token file %s is empty", path)
	}
	return t, nil
}

func envLookup(environ []string) func(string) string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}
