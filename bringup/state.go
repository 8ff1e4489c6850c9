package bringup

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/plan"
)

// MaxRestarts bounds how often the engine restarts a bundle whose process
// died (a crash, an OOM kill): each restart comes back on the same host
// ports with the same tokens, so the agent's endpoints stay valid; after
// the last one the bundle stays down and the bottle is failed.
const MaxRestarts = 3

// Inspector is what reading a bundle's state asks of the engine.
type Inspector interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}

// BundleState is what the engine says of a bottle's bundle container.
type BundleState struct {
	// Status is the engine's: running, restarting, exited, ...; "missing"
	// when there is no such container.
	Status string
	// Serving: running and not restarting.
	Serving bool
	// Restarts is how often the engine restarted the bundle after its
	// process died.
	Restarts int
	// ExitCode and OOMKilled are of the last end of the process, when the
	// engine still knows them (it forgets them at a restart; then they
	// come from its event log, while that holds them).
	ExitCode  int
	OOMKilled bool
	// Ended is when the process last ended (zero when it never did).
	Ended time.Time
	// Ports are the host ports the bundle publishes now.
	Ports plan.HostPorts
	// Ours: the container carries the bottle's label.
	Ours bool
}

// Died reports whether the bundle's process ended other than by being
// stopped: it is restarting, or it exited with a failure.
func (s BundleState) Died() bool {
	return s.Status == "restarting" || (s.Status == "exited" || s.Status == "dead") && (s.ExitCode != 0 || s.OOMKilled)
}

// Failed reports whether the bundle died and the engine will not restart
// it again.
func (s BundleState) Failed() bool { return s.Died() && s.Status != "restarting" }

// Reason says in words why the bundle is not serving, or that it was
// restarted; "" when it runs as it was started.
func (s BundleState) Reason() string {
	end := fmt.Sprintf("exit code %d", s.ExitCode)
	if s.OOMKilled {
		end += ", killed for want of memory"
	}
	when := ""
	if !s.Ended.IsZero() {
		when = " at " + s.Ended.Local().Format(time.RFC3339)
	}
	switch {
	case s.Status == "missing":
		return "the bundle container is gone"
	case s.Status == "restarting":
		return fmt.Sprintf("the bundle process ended (%s)%s; the engine is restarting it (restart %d of %d)", end, when, s.Restarts+1, MaxRestarts)
	case s.Failed():
		return fmt.Sprintf("the bundle process ended (%s)%s and was restarted %d times; it stays down", end, when, s.Restarts)
	case !s.Serving:
		return "the bundle is " + s.Status
	case s.Restarts > 0 && s.ExitCode != 0:
		return fmt.Sprintf("the bundle process ended (%s)%s; the engine restarted it (%d of %d restarts used)", end, when, s.Restarts, MaxRestarts)
	case s.Restarts > 0:
		return fmt.Sprintf("the bundle process ended%s; the engine restarted it (%d of %d restarts used)", when, s.Restarts, MaxRestarts)
	}
	return ""
}

// Inspect reads the state of p's bundle container.
func Inspect(ctx context.Context, e Inspector, p plan.Plan) (BundleState, error) {
	res, err := e.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if isNotFound(err) {
		return BundleState{Status: "missing"}, nil
	}
	if err != nil {
		return BundleState{}, fmt.Errorf("inspecting the bundle of %s: %w", p.Slug, err)
	}
	c := res.Container
	st := BundleState{Status: "unknown", Restarts: c.RestartCount}
	if c.Config != nil {
		st.Ours = c.Config.Labels[plan.LabelBottle] == p.Slug
	}
	if s := c.State; s != nil {
		st.Status = string(s.Status)
		st.Serving = s.Running && !s.Restarting
		st.ExitCode, st.OOMKilled = s.ExitCode, s.OOMKilled
		if t, err := time.Parse(time.RFC3339Nano, s.FinishedAt); err == nil && t.Year() > 1 {
			st.Ended = t
		}
	}
	if st.Serving {
		st.Ports, _ = publishedPorts(ctx, e, p.Bundle.Container)
	}
	if st.Serving && st.Restarts > 0 {
		// The engine forgot how the last process ended; its event log may
		// still say.
		st.ExitCode, st.OOMKilled = lastEnd(ctx, e, res.Container.ID, c.Created)
	}
	return st, nil
}

// lastEnd reads how a container's process last ended from the engine's
// event log, which keeps only recent events: 0, false when it no longer
// holds them.
func lastEnd(ctx context.Context, e Inspector, id, created string) (code int, oom bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	since := created
	if t, err := time.Parse(time.RFC3339Nano, created); err == nil {
		since = strconv.FormatInt(t.Unix(), 10)
	}
	res := e.Events(ctx, client.EventsListOptions{Since: since, Until: strconv.FormatInt(time.Now().Unix()+1, 10),
		Filters: make(client.Filters).Add("container", id).Add("event", "die").Add("event", "oom")})
	killed := false // an oom event comes before the die event of that end
	for {
		select {
		case m := <-res.Messages:
			switch m.Action {
			case events.ActionOOM:
				killed = true
			case events.ActionDie:
				code, _ = strconv.Atoi(m.Actor.Attributes["exitCode"])
				oom, killed = killed, false
			}
		case <-res.Err: //nolint:errcheck // as said below, the error changes nothing
			// The end of the log (io.EOF) or a failure: what was read
			// stands.
			return code, oom
		case <-ctx.Done():
			return code, oom
		}
	}
}

// Short is Reason for a table cell: "" when the bundle runs as started.
func (s BundleState) Short() string {
	end := fmt.Sprintf("exit %d", s.ExitCode)
	if s.OOMKilled {
		end += ", out of memory"
	}
	switch {
	case s.Status == "restarting":
		return "bundle restarting after " + end
	case s.Failed():
		return "bundle " + end + ", restarted " + strconv.Itoa(s.Restarts) + "×"
	case s.Serving && s.Restarts > 0 && s.ExitCode != 0:
		return "bundle restarted " + strconv.Itoa(s.Restarts) + "× after " + end
	case s.Serving && s.Restarts > 0:
		return "bundle restarted " + strconv.Itoa(s.Restarts) + "×"
	}
	return ""
}

// Event names the bundle's state as an event type: "bundle.restarted",
// "bundle.down" (restarting), "bundle.failed"; "" when it runs as started
// or was stopped.
func (s BundleState) Event() string {
	switch {
	case s.Status == "restarting":
		return "bundle.down"
	case s.Failed():
		return "bundle.failed"
	case s.Serving && s.Restarts > 0:
		return "bundle.restarted"
	}
	return ""
}
