package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/probe"
)

// superviseChecks posts an event with the agent's token (it must be
// accepted) and calls the operator's routes with it (each must answer 403).
func superviseChecks(ctx context.Context, cfg probe.Config, bottle, token string, tokenErr error) []probe.Check {
	event := probe.Check{Kind: probe.KindEvent, Target: cfg.SuperviseURL + api.PathEvents,
		Tried: "POST " + api.PathEvents + " (an event) with the agent's token"}
	routes := []struct{ method, path string }{
		{http.MethodGet, api.PathEvents},
		{http.MethodGet, api.PathAudit},
		{http.MethodPost, api.ApprovalPath("probe-not-a-request")},
	}
	ops := make([]probe.Check, len(routes))
	for i, r := range routes {
		ops[i] = probe.Check{Kind: probe.KindOperatorRoute, Target: r.method + " " + r.path,
			Tried: r.method + " " + r.path + ", an operator-only route, with the agent's token"}
	}
	fail := func(why string) []probe.Check {
		event.Outcome, event.Result = probe.OutcomeError, why
		for i := range ops {
			ops[i].Outcome, ops[i].Result = probe.OutcomeError, why
		}
		return append([]probe.Check{event}, ops...)
	}
	switch {
	case cfg.SuperviseURL == "":
		return fail("no supervisor to ask: $BOTTLE_SUPERVISE_URL is empty and --supervise was not given")
	case tokenErr != nil:
		return fail(tokenErr.Error())
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	c, err := client.New(cfg.SuperviseURL, token, client.WithHTTPClient(&http.Client{Transport: t, Timeout: cfg.Timeout.D()}))
	if err != nil {
		return fail(err.Error())
	}

	start := time.Now()
	ev, err := c.PostEvent(ctx, "probe.check", "docker bottle probe: checking the bottle's promises", map[string]string{"bottle": bottle})
	event.Evidence.Elapsed = probe.Millis(time.Since(start))
	if err == nil {
		event.Evidence.Status = http.StatusCreated
		event.Outcome, event.Result = probe.OutcomeOK, fmt.Sprintf("the supervisor accepted the event (seq %d, source %q)", ev.Seq, ev.Source)
	} else {
		event.Outcome, event.Evidence = statusOutcome(err, event.Evidence)
		event.Result = "the event was not accepted: " + err.Error()
	}

	calls := []func() error{
		func() error { _, err := c.Events(ctx, 0); return err },
		func() error { _, err := c.Audit(ctx, 0); return err },
		func() error { _, err := c.Decide(ctx, "probe-not-a-request", approval.Deny); return err },
	}
	for i, call := range calls {
		start := time.Now()
		err := call()
		ops[i].Evidence.Elapsed = probe.Millis(time.Since(start))
		switch code := client.StatusCode(err); {
		case err == nil:
			ops[i].Evidence.Status = http.StatusOK
			ops[i].Outcome, ops[i].Result = probe.OutcomeOK, "the supervisor served the agent's token on an operator route"
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			ops[i].Outcome, ops[i].Evidence = statusOutcome(err, ops[i].Evidence)
			ops[i].Result = fmt.Sprintf("the supervisor refused it with %d %s", code, http.StatusText(code))
		case code != 0 && code < 500:
			// The role check passed: only the request itself was wrong
			// (no such approval).
			ops[i].Evidence.Status, ops[i].Evidence.Error = code, err.Error()
			ops[i].Outcome = probe.OutcomeOK
			ops[i].Result = fmt.Sprintf("the supervisor let the agent's token through its role check (then answered %d %s)", code, http.StatusText(code))
		default:
			ops[i].Outcome, ops[i].Evidence = statusOutcome(err, ops[i].Evidence)
			ops[i].Result = "the call failed: " + err.Error()
		}
	}
	return append([]probe.Check{event}, ops...)
}

// statusOutcome classes a supervisor error: an answer with a 4xx status is a
// refusal, anything else a failure.
func statusOutcome(err error, ev probe.Evidence) (probe.Outcome, probe.Evidence) {
	ev.Error = err.Error()
	code := client.StatusCode(err)
	ev.Status = code
	if code >= 400 && code < 500 {
		return probe.OutcomeRefused, ev
	}
	return probe.OutcomeFailed, ev
}
