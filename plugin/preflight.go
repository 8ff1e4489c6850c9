package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

// errNotConfirmed is a preflight the user did not confirm.
var errNotConfirmed = errors.New("the bottle was not started: you did not confirm it. Nothing was created")

// checkRunFormat checks run's --format, which has one use: json prints
// the plan of a dry run. A preflight is for a person to read and answer,
// and a started bottle prints the agent's output or its name, so neither
// takes it; the refusal of --preflight says what a script does instead.
func checkRunFormat(format string, dryRun, preflight bool) error {
	switch {
	case format == "":
		return nil
	case format != "json":
		return fmt.Errorf(`--format %q is not supported: --format json goes with --dry-run`, format)
	case preflight:
		return errors.New("--format json goes with --dry-run, not --preflight, which is for a person to read and answer: " +
			"a script reads what the bottle will be allowed from `docker bottle run --dry-run --format json` (it starts nothing), then runs it without --preflight")
	case !dryRun:
		return errors.New("--format json goes with --dry-run: a started bottle prints the agent's output, or with -d its name")
	}
	return nil
}

// writePreflight says what a bottle of plan p will be allowed, before
// anything of it exists: where it may connect, which secrets the proxy
// adds and for which host (never their values), what it may push, what
// waits for its user, where it runs and why, the ports it publishes and
// the agent settings it carries (as `docker bottle config` says them).
func writePreflight(w io.Writer, p plan.Plan, ls loadedSpec) error {
	fmt.Fprintf(w, "Bottle %s on %s\n\n", p.Slug, p.Workspace)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("runs", fmt.Sprintf("%s (network mode %s): %s", p.Backend, p.NetworkMode, p.Why))
	row("agent", p.Agent.Provider+": "+strings.Join(p.Agent.Command, " "))
	for i, r := range p.Egress.Allow {
		row(first(i, "may connect to"), ruleText(r))
	}
	if len(p.Egress.Allow) == 0 {
		row("may connect to", "nowhere")
	}
	for i, r := range p.Egress.Deny {
		row(first(i, "never to"), ruleText(r))
	}
	for i, s := range p.Egress.Secrets {
		row(first(i, "secrets"), secretText(s))
	}
	if len(p.Egress.Secrets) == 0 {
		row("secrets", "none")
	}
	row("may push", pushText(p.GitGate))
	row("protected paths", orNone(strings.Join(p.GitGate.ProtectedPaths, ", ")))
	row("approvals", approvalsText(p.Supervise))
	var ports []string
	for _, pt := range p.Spec.Ports {
		ports = append(ports, publishedText(pt))
	}
	row("published ports", orNone(strings.Join(ports, ", ")))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	writeSpecWarnings(w, &ls.spec)
	report, refused := userConfigReportOf(ls)
	if report == nil {
		return refused
	}
	report.writeText(w)
	return refused
}

// writeSpecWarnings says what the spec allows that it may not mean to
// (spec.Warnings), one "Warning:" line each and a blank line after them.
func writeSpecWarnings(w io.Writer, s *spec.Spec) {
	ws := s.Warnings()
	for _, msg := range ws {
		fmt.Fprintln(w, "Warning: "+msg)
	}
	if len(ws) > 0 {
		fmt.Fprintln(w)
	}
}

// first is label on a list's first row, nothing on the others.
func first(i int, label string) string {
	if i == 0 {
		return label
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ruleText says an egress rule: the host, its ports and what the proxy
// checks of it.
func ruleText(r spec.Rule) string {
	ports := []string{"443", "80"}
	if len(r.Ports) > 0 {
		ports = ports[:0]
		for _, p := range r.Ports {
			ports = append(ports, strconv.Itoa(p))
		}
	}
	s := r.Host + " ports " + strings.Join(ports, ", ")
	if len(r.Methods) > 0 {
		s += ", methods " + strings.Join(r.Methods, " ")
	}
	if len(r.Paths) > 0 {
		s += ", paths " + strings.Join(r.Paths, " ")
	}
	if r.Private {
		s += ", private addresses too"
	}
	if r.WebSocket {
		s += ", WebSockets"
	}
	return s
}

// secretText says which secret the proxy adds for which host, and where
// it reads it: never its value.
func secretText(s spec.Secret) string {
	src := "$" + s.FromEnv
	if s.FromFile != "" {
		src = "file " + s.FromFile
	}
	t := fmt.Sprintf("%s to %s, from %s", s.Header, s.Host, src)
	if s.Optional {
		t += " (when set)"
	}
	return t
}

// pushText says the refs the agent may push and how.
func pushText(g plan.GitGatePlan) string {
	s := strings.Join(g.Push, ", ")
	var also []string
	for _, a := range []struct {
		on   bool
		what string
	}{{g.AllowForce, "force pushes"}, {g.AllowDelete, "deletes"}, {g.AllowTags, "tags"}} {
		if a.on {
			also = append(also, a.what)
		}
	}
	if len(also) > 0 {
		s += " (with " + strings.Join(also, ", ") + ")"
	}
	return s
}

// approvalsText says what waits for the user, and for how long.
func approvalsText(sp plan.SupervisePlan) string {
	if len(sp.Approvals) == 0 {
		return "none: the bottle asks you nothing"
	}
	s := strings.Join(sp.Approvals, ", ")
	if len(sp.Tools) > 0 {
		s += " (tools " + strings.Join(sp.Tools, ", ") + ")"
	}
	if sp.Timeout == 0 {
		return s + "; denied at once (timeout 0)"
	}
	return s + "; denied after " + sp.Timeout.String()
}

// publishedText says where a port of the agent is published.
func publishedText(p spec.Port) string {
	host := "a free port"
	if p.Host != 0 {
		host = strconv.Itoa(p.Host)
	}
	return fmt.Sprintf("agent's %d at 127.0.0.1:%s", p.Agent, host)
}

// confirmStart asks the user on in whether to start the bottle: y or yes
// starts it, any other answer or the end of the input does not. A Ctrl-C
// ends ctx and with it the question.
func confirmStart(ctx context.Context, in io.Reader, out io.Writer) error {
	fmt.Fprint(out, "Start this bottle? [y/N] ")
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return ctx.Err()
	case a := <-answer:
		switch strings.ToLower(strings.TrimSpace(a)) {
		case "y", "yes":
			return nil
		}
		return errNotConfirmed
	}
}
