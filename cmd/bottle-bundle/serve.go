package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/docker-bottle/docker-bottle/bundle"
	"github.com/docker-bottle/docker-bottle/bundle/audit"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/proxy"
	"github.com/docker-bottle/docker-bottle/bundle/relay"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor"
)

// runServe runs the whole bundle in one process: the supervisor, and the
// proxy and the gate wired to it (their approvals go to its Decider, their
// audit lines to its merged stream, their health to its report).
func runServe(ctx context.Context, args []string) (err error) {
	file, err := configFlag("serve", args)
	if err != nil {
		return err
	}
	cfg, err := bundle.LoadConfig(file)
	if err != nil {
		return err
	}
	if err := waitForSecrets(ctx, secretFiles(cfg), secretsWait); err != nil {
		return err
	}
	mem := applyMemoryLimit()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sup, err := supervisor.New(cfg.Supervisor)
	if err != nil {
		return err
	}
	defer closeInto(&err, sup)

	proxyAudit, err := openAudit(cfg.Proxy.AuditFile, cfg.Proxy.AuditMaxBytes, sup, "proxy")
	if err != nil {
		return err
	}
	defer closeInto(&err, proxyAudit)
	gateAudit, err := openAudit(cfg.Gate.AuditFile, 0, sup, "gate")
	if err != nil {
		return err
	}
	defer closeInto(&err, gateAudit)

	px, err := proxy.New(cfg.Proxy, proxy.WithDecider(sup.Decider()), proxy.WithAudit(proxyAudit))
	if err != nil {
		return err
	}
	defer closeInto(&err, px)
	gt, err := gate.New(cfg.Gate, gate.WithDecider(sup.Decider()), gate.WithAudit(gateAudit), gate.WithMemoryLimit(mem))
	if err != nil {
		return err
	}
	defer closeInto(&err, gt)

	relayAudit, err := openAudit(cfg.Relay.AuditFile, 0, sup, "relay")
	if err != nil {
		return err
	}
	defer closeInto(&err, relayAudit)
	rl := relay.New(cfg.Relay, relayAudit)

	type daemon struct {
		name, addr string
		serve      func(context.Context, net.Listener) error
		up         atomic.Bool
	}
	ds := []*daemon{
		{name: "supervisor", addr: orDefault(cfg.Supervisor.Listen, supervisor.DefaultListen), serve: sup.Serve},
		{name: "proxy", addr: orDefault(cfg.Proxy.Listen, proxy.DefaultListen), serve: px.Serve},
		{name: "gate", addr: cfg.Gate.Listen, serve: gt.Serve},
	}
	// The relay's pool: one listener per port the bundle publishes for the
	// agent's ports (docker backend).
	for _, addr := range cfg.Relay.Listen {
		ds = append(ds, &daemon{name: "relay", addr: addr, serve: rl.Serve})
	}
	sup.AddHealth("proxy", func() error {
		if !ds[1].up.Load() || !px.Health().Serving {
			return errors.New("not serving")
		}
		return nil
	})
	sup.AddHealth("gate", func() error {
		if !ds[2].up.Load() {
			return errors.New("not serving")
		}
		return nil
	})

	lns := make([]net.Listener, len(ds))
	for i, d := range ds {
		if lns[i], err = net.Listen("tcp", d.addr); err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return fmt.Errorf("%s: listening on %s: %w", d.name, d.addr, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.up.Store(true)
			fmt.Fprintf(os.Stderr, "%s listening on %s\n", d.name, lns[i].Addr())
			errs[i] = d.serve(ctx, lns[i])
			d.up.Store(false)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", d.name, errs[i])
			}
			// One daemon down takes the bundle down: the plugin sees the
			// container exit instead of a half-working bundle.
			cancel()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openAudit opens a daemon's audit file and tees its lines into the
// supervisor's merged stream; notable lines also become events.
func openAudit(path string, maxBytes int64, sup *supervisor.Supervisor, name string) (*audit.Logger, error) {
	if path == "" {
		return nil, nil
	}
	l, err := audit.Open(path, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	l.Tee(sup.AuditSource(name))
	l.Tee(func(line []byte) {
		if typ, msg, ok := notable(line); ok {
			sup.Emit(supervisor.Event{Source: name, Type: typ, Message: msg, Data: append(json.RawMessage(nil), line...)})
		}
	})
	return l, nil
}

// notable picks the audit lines a human watching events wants to see:
// refused connections and every push.
func notable(line []byte) (typ, msg string, ok bool) {
	var r struct {
		Daemon   string `json:"daemon"`
		Event    string `json:"event"`
		Decision string `json:"decision"`
		Host     string `json:"host"`
		Port     int    `json:"port"`
		Reason   string `json:"reason"`
	}
	if json.Unmarshal(line, &r) != nil {
		return "", "", false
	}
	switch {
	case r.Daemon == "proxy" && r.Decision != "" && r.Decision != "allow":
		return "egress." + r.Decision, fmt.Sprintf("%s:%d %s", r.Host, r.Port, r.Reason), true
	case r.Event == "push":
		return "git.push." + r.Decision, r.Reason, true
	}
	return "", "", false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
