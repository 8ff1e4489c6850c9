package plugin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
)

// askPoll is how often the interactive mode looks for new requests.
const askPoll = 300 * time.Millisecond

// runAsk is `docker bottle approvals -i`: each request the bottle holds is
// shown as it arrives, oldest first, and decided with the answer read from
// the user (a terminal, or any input, one answer per line). It ends at the
// end of the input or on Ctrl-C; requests it did not decide keep waiting,
// and are denied at their deadline as ever.
func runAsk(ctx context.Context, dockerCli command.Cli, sup *supervised) error {
	out := dockerCli.Out()
	answers := make(chan string)
	inputDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(dockerCli.In())
		for sc.Scan() {
			select {
			case answers <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
		inputDone <- sc.Err()
	}()

	fmt.Fprintf(out, "Waiting for requests of bottle %s to decide (Ctrl-C or end of input to stop).\n", sup.name)
	seen := map[string]bool{}
	for {
		as, err := sup.c.Approvals(ctx)
		if err != nil {
			return sup.wrap(err)
		}
		slices.SortFunc(as, func(a, b api.Approval) int { return a.Since.Compare(b.Since) })
		var next *api.Approval
		for i := range as {
			if !seen[as[i].ID] {
				next = &as[i]
				break
			}
		}
		if next == nil {
			select {
			case <-ctx.Done():
				return nil
			case err := <-inputDone:
				return err
			case <-answers:
				// Never carried over to a request not yet shown: an
				// answer is for the request on the screen.
				fmt.Fprintln(out, "No request is waiting; that answer is dropped.")
			case <-time.After(askPoll):
			}
			continue
		}
		seen[next.ID] = true
		showRequest(out, *next)
		for decided := false; !decided; {
			fmt.Fprint(out, "Allow? [y] once, [a] always, [n] deny, [s] skip: ")
			var answer string
			select {
			case <-ctx.Done():
				fmt.Fprintln(out)
				return nil
			case err := <-inputDone:
				fmt.Fprintln(out)
				return err
			case answer = <-answers:
			}
			var d approval.Decision
			switch strings.ToLower(answer) {
			case "y", "yes":
				d = approval.AllowOnce
			case "a", "always":
				d = approval.AllowAlways
			case "n", "no":
				d = approval.Deny
			case "s", "skip":
				fmt.Fprintf(out, "Skipped: it waits, and is denied in %s unless decided with `docker bottle approve`.\n",
					units.HumanDuration(time.Until(next.Deadline)))
				decided = true
				continue
			default:
				fmt.Fprintf(out, "%q is not an answer.\n", answer)
				continue
			}
			decided = true
			outcome, err := decideHeld(ctx, sup, next.ID, d)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, outcome)
		}
	}
}

// decideHeld settles one held request and says the outcome: what the
// decision did, or that the request was settled meanwhile. `approvals -i`
// and the dashboard decide through it.
func decideHeld(ctx context.Context, sup *supervised, id string, d approval.Decision) (string, error) {
	res, err := sup.c.Decide(ctx, id, d)
	switch {
	case client.StatusCode(err) == 404:
		return "Too late: it was settled meanwhile (its deadline passed, or it was decided elsewhere).", nil
	case err != nil:
		return "", sup.wrap(err)
	}
	return decisionVerbs[res.Decision] + ".", nil
}

// showRequest prints one held request; what the agent controls is
// cleaned of control characters.
func showRequest(w io.Writer, a api.Approval) {
	fmt.Fprintf(w, "\n%s request %s: %s\n", clean(string(a.Kind)), a.ID[:min(len(a.ID), shortID)], clean(a.Subject))
	if a.Requester != "" {
		fmt.Fprintf(w, "  from %s, waiting %s, denied in %s\n", clean(a.Requester),
			units.HumanDuration(time.Since(a.Since)), units.HumanDuration(time.Until(a.Deadline)))
	} else {
		fmt.Fprintf(w, "  waiting %s, denied in %s\n", units.HumanDuration(time.Since(a.Since)), units.HumanDuration(time.Until(a.Deadline)))
	}
	if a.Detail != "" {
		fmt.Fprintf(w, "  %s\n", clean(a.Detail))
	}
}
