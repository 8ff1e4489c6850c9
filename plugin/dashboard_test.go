package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"

	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/dashboard"
	"github.com/docker-bottle/docker-bottle/stage"
)

// testDashboardSource is the dashboard's source over the bottles of the
// test's state dir and the fake engine.
func testDashboardSource(t *testing.T) *dashboardSource {
	t.Helper()
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Initialize(flags.NewClientOptions(), command.WithAPIClient(fakeEngine{})); err != nil {
		t.Fatal(err)
	}
	dirs, err := stage.DefaultDirs()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := bottles.New(cli, bottles.WithDirs(dirs), bottles.WithSmolvm(nil))
	if err != nil {
		t.Fatal(err)
	}
	return &dashboardSource{dockerCli: cli, svc: svc}
}

func TestDashboardReadsAndDecidesThroughTheSupervisor(t *testing.T) {
	ctx := context.Background()
	b := newBottle(t, "dash")
	src := testDashboardSource(t)
	// What the agent controls comes with escape sequences.
	held := b.hold(approval.Egress, "evil\x1b]0;owned\x07.example:443")
	b.waitPending(t, 1)
	if _, err := b.agent.PostEvent(ctx, "hook.Notification", "look \x1b[2Jhere", nil); err != nil {
		t.Fatal(err)
	}

	snap := dashboard.Poll(ctx, src, dashboard.Request{Detail: "dash"}, dashboard.PollOptions{Timeout: 5 * time.Second})
	if snap.Err != nil || len(snap.Bottles) != 1 {
		t.Fatalf("poll: %v, %d bottles", snap.Err, len(snap.Bottles))
	}
	r := snap.Bottles[0]
	if r.Err != nil || r.SupErr != nil || !r.Facts.Serving {
		t.Fatalf("bottle: %v, supervisor: %v, serving %v", r.Err, r.SupErr, r.Facts.Serving)
	}
	if len(r.Held) != 1 || r.Held[0].Subject != `evil\x1b]0;owned\x07.example:443` || r.Held[0].Bottle != "dash" {
		t.Fatalf("held: %+v", r.Held)
	}
	var ev *dashboard.Line
	for i, e := range r.Events {
		if e.Type == "hook.Notification" {
			ev = &r.Events[i]
		}
	}
	if ev == nil || ev.Text != `look \x1b[2Jhere` || ev.Source != "agent" {
		t.Errorf("the agent's event: %+v", ev)
	}

	out, err := src.Decide(ctx, "dash", r.Held[0].ID, approval.AllowOnce)
	if err != nil || out != "Allowed once." {
		t.Fatalf("decide: %q, %v", out, err)
	}
	if d := outcome(t, held); d != approval.AllowOnce {
		t.Errorf("the held request was settled %s", d)
	}
	// The same rule as `approvals -i`: a request settled meanwhile is
	// said to be, and is no error.
	if out, err := src.Decide(ctx, "dash", r.Held[0].ID, approval.Deny); err != nil || !strings.HasPrefix(out, "Too late") {
		t.Errorf("deciding it again: %q, %v", out, err)
	}
	if !strings.Contains(strings.Join(auditTexts(t, src), "\n"), "allow-once") {
		t.Errorf("the audit feed does not show the decision: %q", auditTexts(t, src))
	}
}

func auditTexts(t *testing.T, src *dashboardSource) []string {
	t.Helper()
	sup, err := src.Supervisor(context.Background(), "dash")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := sup.Audit(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Source+" "+l.Type+" "+l.Text)
	}
	return out
}

func TestDashboardShowsASupervisorThatIsGone(t *testing.T) {
	b := newBottle(t, "gone")
	b.stop()
	snap := dashboard.Poll(context.Background(), testDashboardSource(t), dashboard.Request{}, dashboard.PollOptions{Timeout: 5 * time.Second})
	if len(snap.Bottles) != 1 || snap.Bottles[0].SupErr == nil || !strings.Contains(snap.Bottles[0].SupErr.Error(), "cannot reach the supervisor") {
		t.Errorf("a supervisor that does not listen: %+v", snap.Bottles)
	}
}

func TestLastLineOfTheAgentsOutput(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[31mbuilding\x1b[0m\r\nDone \u202e\n\n": `Done \u202e`,
		"one\rtwo   \r\n  \r\n":                      "two",
		"":                                           "",
	} {
		if got := lastLine(in); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDashboardNeedsATerminal(t *testing.T) {
	useStateDir(t)
	_, _, err := runCommand(context.Background(), t, "dashboard")
	if err == nil || !strings.Contains(err.Error(), "needs a terminal") {
		t.Errorf("without a terminal: %v", err)
	}
}
