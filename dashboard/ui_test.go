package dashboard

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// program runs a Model without a terminal: messages go in by hand, and
// the commands they return are run to the end here.
type program struct {
	t *testing.T
	m *Model
	// bells and execs are what the commands asked of the terminal.
	bells, execs int
	quit         bool
}

func newProgram(t *testing.T, src Source, o Options) *program {
	t.Helper()
	if o.Interval == 0 {
		// A tick command sleeps for the interval before it answers.
		o.Interval = time.Millisecond
	}
	if o.Poll.Timeout == 0 {
		o.Poll = PollOptions{Timeout: 200 * time.Millisecond, Parallel: 4}
	}
	p := &program{t: t, m: New(context.Background(), src, o)}
	p.run(p.m.Init())
	return p
}

// run carries out cmd and feeds the messages it gives back to the model;
// ticks become polls at once.
func (p *program) run(cmd tea.Cmd) {
	p.t.Helper()
	if cmd == nil {
		return
	}
	msg := cmd()
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			p.run(c)
		}
	case tea.QuitMsg:
		p.quit = true
	case tickMsg:
		// A tick polls again; a test asks for it with send(tickMsg{...}).
	case tea.RawMsg:
		if msg.Msg == bell {
			p.bells++
		}
	default:
		// Bubble Tea's own messages to the terminal are not exported.
		v := reflect.ValueOf(msg)
		switch v.Type().String() {
		case "tea.execMsg":
			p.execs++
		case "tea.sequenceMsg":
			for i := range v.Len() {
				p.run(v.Index(i).Interface().(tea.Cmd))
			}
		default:
			p.send(msg)
		}
	}
}

func (p *program) send(msg tea.Msg) {
	p.t.Helper()
	_, cmd := p.m.Update(msg)
	p.run(cmd)
}

func (p *program) key(keys ...string) {
	p.t.Helper()
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "backspace":
			msg = tea.KeyPressMsg{Code: tea.KeyBackspace}
		case "tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "ctrl+c":
			msg = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
		case "ctrl+u":
			msg = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
		default:
			r := []rune(strings.ToLower(k))[0]
			msg = tea.KeyPressMsg{Code: r, Text: k}
			if k != strings.ToLower(k) {
				msg.Mod = tea.ModShift
			}
		}
		p.send(msg)
	}
}

// screen is the view as plain text, lines checked against the size.
func (p *program) screen() []string {
	p.t.Helper()
	lines := strings.Split(ansi.Strip(p.m.screen()), "\n")
	if len(lines) != p.m.height {
		p.t.Errorf("the screen has %d lines, the terminal %d", len(lines), p.m.height)
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > p.m.width {
			p.t.Errorf("line is %d wide, the terminal %d: %q", w, p.m.width, l)
		}
	}
	return lines
}

// line returns the screen's line containing s.
func (p *program) line(s string) string {
	p.t.Helper()
	for _, l := range p.screen() {
		if strings.Contains(l, s) {
			return l
		}
	}
	p.t.Fatalf("no line says %q on the screen:\n%s", s, strings.Join(p.screen(), "\n"))
	return ""
}

func (p *program) has(s string) bool {
	return slices.ContainsFunc(p.screen(), func(l string) bool { return strings.Contains(l, s) })
}

func TestListFitsA80x24Terminal(t *testing.T) {
	asks := running("needs-me").hold("r1", "api.example.com:443", 2*time.Minute)
	asks.held[0].Kind = "push"
	asks.held[0].Detail = "touches .github/workflows/ci.yml"
	long := running("a-bottle-with-a-very-long-name-indeed")
	long.facts.Branch = "bottle/a-bottle-with-a-very-long-name-indeed/and-more"
	long.facts.LastLine = "the agent's last words"
	exited := running("done")
	exited.facts.Agent, exited.facts.ExitCode, exited.facts.Serving = "exited", 2, false
	silent := running("silent")
	silent.hang = true
	f := newFake(asks, long, exited, silent)
	for i := range 30 {
		b := running("more-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		f.bottles[b.facts.Name] = b.hold("m"+b.facts.Name, "host.example:443", time.Duration(i)*time.Second)
	}
	p := newProgram(t, f, Options{})
	p.send(tea.WindowSizeMsg{Width: 80, Height: 24})

	screen := p.screen()
	if !strings.Contains(screen[0], "34 bottles") || !strings.Contains(screen[0], "31 waiting for you") {
		t.Errorf("title line %q", screen[0])
	}
	// The first bottle row is the longest waiting one, selected and marked.
	first := screen[3]
	if !strings.HasPrefix(first, ">!") || !strings.Contains(first, "waiting for you") {
		t.Errorf("first row %q, want the selected waiting bottle", first)
	}
	if l := p.line("HELD REQUESTS (31)"); l == "" {
		t.Error("no queue heading")
	}
	req := p.line("api.example.com:443")
	for _, want := range []string{"push", "needs-me", "2m", "touches .git"} {
		if !strings.Contains(req, want) {
			t.Errorf("request row %q lacks %q", req, want)
		}
	}
	if !p.has("bottles shown)") {
		t.Error("a list longer than the screen does not say that part is hidden")
	}
	// Ones further down the list are not shown at 24 lines: move there.
	for range 40 {
		p.key("down")
	}
	if l := p.line("silent"); !strings.Contains(l, "supervisor: did not") || !strings.Contains(l, "working") {
		t.Errorf("a silent supervisor is not shown as such: %q", p.line("silent"))
	}
	if !strings.Contains(p.line("done"), "exited (2)") {
		t.Errorf("an exited bottle does not show its code: %q", p.line("done"))
	}
	if !p.has("a-bottle-with-a…") {
		t.Error("a long name is not cut to its column")
	}

	// A large terminal shows the last line of output too.
	p.send(tea.WindowSizeMsg{Width: 200, Height: 60})
	if !strings.Contains(p.line("a-bottle-with"), "the agent's last words") {
		t.Error("the last line of output is not shown on a wide terminal")
	}
}

func TestDecisionKeysDecideTheSelectedRequest(t *testing.T) {
	f := newFake(running("a").hold("a1", "new.example:443", time.Second),
		running("b").hold("b1", "old.example:443", time.Minute).hold("b2", "mid.example:443", 30*time.Second))
	p := newProgram(t, f, Options{})
	// In the queue, a key decides the selected request: the second
	// oldest after moving down, then the oldest left.
	p.key("tab", "down", "d")
	p.key("A")
	// In the bottles, the selected bottle's oldest request.
	p.key("tab", "a")
	want := []string{"decide b b2 deny", "decide b b1 allow-always", "decide a a1 allow-once"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("decisions %v, want %v", got, want)
	}
	if q := p.m.st.Queue(); len(q) != 0 {
		t.Errorf("queue after deciding everything: %+v", q)
	}
	if !strings.Contains(p.line("a: egress"), "Decided allow-once") {
		t.Errorf("the status does not say the outcome: %q", p.m.status)
	}
	p.key("a")
	if len(f.Calls()) != 3 || !p.has("No request is waiting there.") {
		t.Errorf("with no request a decision key still called %v", f.Calls())
	}
}

func TestRequestSettledMeanwhileLeavesTheQueue(t *testing.T) {
	f := newFake(running("a").hold("a1", "x.example:443", time.Second))
	f.settled = true
	p := newProgram(t, f, Options{})
	p.key("d")
	if !p.has("Too late") || len(p.m.st.Queue()) != 0 {
		t.Errorf("a request settled meanwhile: status %q, queue %+v", p.m.status, p.m.st.Queue())
	}
}

func TestActionsAskFirst(t *testing.T) {
	f := newFake(running("a"), running("b"))
	p := newProgram(t, f, Options{})
	p.key("down", "s")
	if !p.has("Stop bottle b? [y/N]") {
		t.Fatal("stop does not ask for confirmation")
	}
	p.key("n")
	p.key("x", "y", "S", "y")
	// q in a confirmation cancels it rather than quitting.
	p.key("s", "q")
	if want := []string{"remove b", "start b"}; !slices.Equal(f.Calls(), want) {
		t.Errorf("actions %v, want %v", f.Calls(), want)
	}
	if p.quit {
		t.Error("q answering a confirmation quit the dashboard")
	}
}

func TestDetailShowsTheFeed(t *testing.T) {
	b := running("a").hold("a1", "x.example:443", time.Second).event("hook.PostToolUse", "Bash(make test)")
	b.audit = []Line{{Seq: 1, Time: time.Now(), Source: "proxy", Type: "deny", Text: "CONNECT evil.example:443"}}
	b.health = "gate: not serving"
	f := newFake(b, running("b"))
	p := newProgram(t, f, Options{})
	p.key("enter")
	if p.m.detail != "a" {
		t.Fatalf("enter opened %q", p.m.detail)
	}
	for _, want := range []string{"a · waiting for you", "Bash(make test)", "CONNECT evil.example:443", "gate: not serving", "x.example:443"} {
		if !p.has(want) {
			t.Errorf("the detail lacks %q:\n%s", want, strings.Join(p.screen(), "\n"))
		}
	}
	p.key("d")
	if got := f.Calls(); !slices.Equal(got, []string{"decide a a1 deny"}) {
		t.Errorf("d in the detail: %v", got)
	}
	p.key("esc")
	if p.m.detail != "" || !p.has("HELD REQUESTS (0)") {
		t.Error("esc does not go back to the list")
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		p := newProgram(t, newFake(running("a")), Options{})
		p.key(k)
		if !p.quit {
			t.Errorf("%s does not quit", k)
		}
	}
}

func TestBellAndTitleWhenABottleStartsWaiting(t *testing.T) {
	f := newFake(running("a"))
	p := newProgram(t, f, Options{})
	if p.bells != 0 || p.m.View().WindowTitle != "docker bottle dashboard" {
		t.Errorf("with no one waiting: %d bells, title %q", p.bells, p.m.View().WindowTitle)
	}
	f.with(func() { f.bottles["a"].hold("a1", "x.example:443", 0) })
	p.send(tickMsg{p.m.tickGen})
	if p.bells != 1 {
		t.Errorf("%d bells when a bottle starts waiting", p.bells)
	}
	if got := p.m.View().WindowTitle; got != "(1 waiting) docker bottle dashboard" {
		t.Errorf("title %q", got)
	}
	p.send(tickMsg{p.m.tickGen})
	if p.bells != 1 {
		t.Error("the bell rings again for the same bottle")
	}
	if !p.m.View().AltScreen {
		t.Error("the dashboard is not on the alternate screen")
	}
}

func TestAttachHandsTheTerminalOver(t *testing.T) {
	f := newFake(running("a"))
	p := newProgram(t, f, Options{})
	p.key("t")
	if p.execs != 0 || !p.has("docker bottle attach a") {
		t.Errorf("attach without a command: %d execs, status %q", p.execs, p.m.status)
	}
	var attached []string
	p = newProgram(t, f, Options{Attach: func(name string) tea.ExecCommand {
		attached = append(attached, name)
		return &osCommand{exec.Command("true")}
	}})
	p.key("t")
	if p.execs != 1 || !slices.Equal(attached, []string{"a"}) {
		t.Errorf("attach: %d execs of %v", p.execs, attached)
	}
	// Bubble Tea runs the command and calls back; the agent's exit code
	// is no error of the dashboard's.
	p.send(p.m.attached("a")(exec.Command("sh", "-c", "exit 3").Run()))
	if !p.has("Back from a: the attach ended with exit code 3.") {
		t.Errorf("after an attach whose agent ended: %q", p.m.status)
	}
	p.send(p.m.attached("a")(nil))
	if !p.has("Back from a.") {
		t.Errorf("after a detach: %q", p.m.status)
	}
}

func TestDiffShowsWhatWasPushedOrSaysWhyNot(t *testing.T) {
	f := newFake(running("a"))
	p := newProgram(t, f, Options{})
	p.key("v")
	if p.execs != 0 || !p.has("docker bottle diff a") {
		t.Errorf("diff without a command: %d execs, status %q", p.execs, p.m.status)
	}
	var shown []string
	p = newProgram(t, f, Options{Diff: func(name string) tea.ExecCommand {
		shown = append(shown, name)
		return &osCommand{exec.Command("true")}
	}})
	p.key("v")
	if p.execs != 1 || !slices.Equal(shown, []string{"a"}) {
		t.Errorf("diff: %d execs of %v", p.execs, shown)
	}
	// The error the command ended with is gone from the screen when the
	// dashboard comes back: the status line says it, cleaned.
	p.send(p.m.diffEnded("a")(errors.New("the agent of a has pushed nothing to bottle/a/\033[2Jwork yet")))
	if p.m.status != "The changes of a cannot be shown: the agent of a has pushed nothing to bottle/a/work yet" || !p.has("The changes of a cannot") {
		t.Errorf("after a failed diff: %q", p.m.status)
	}
	p.send(p.m.diffEnded("a")(nil))
	if !p.has("Back from the changes of a.") {
		t.Errorf("after the diff: %q", p.m.status)
	}
}

func TestOnlyTheLastTickPolls(t *testing.T) {
	f := newFake(running("a").hold("a1", "x.example:443", time.Second))
	p := newProgram(t, f, Options{})
	first := p.m.tickGen
	// A decision polls at once, and that poll asks for a tick of its own.
	p.key("a")
	if p.m.tickGen == first {
		t.Fatal("the poll after a decision asked for no tick")
	}
	if _, cmd := p.m.Update(tickMsg{first}); cmd != nil {
		t.Error("the tick asked for before the decision polls too: two chains of polls")
	}
	if _, cmd := p.m.Update(tickMsg{p.m.tickGen}); cmd == nil {
		t.Error("the last tick does not poll")
	}
}

// osCommand runs a process as the plugin's in-process commands run for
// the dashboard.
type osCommand struct{ *exec.Cmd }

func (c *osCommand) SetStdin(r io.Reader)  { c.Stdin = r }
func (c *osCommand) SetStdout(w io.Writer) { c.Stdout = w }
func (c *osCommand) SetStderr(w io.Writer) { c.Stderr = w }

// TestListShowsUsage: each row says its bottle's CPU and memory, "-" for
// what is not known (a smolvm bottle, the first poll's CPU), in 80
// columns and in more; the bottle's own screen says them too.
func TestListShowsUsage(t *testing.T) {
	busy := running("busy")
	busy.facts.Usage = Usage{CPU: 42.25, CPUKnown: true, Memory: 300 << 20, MemoryKnown: true}
	vm := running("vm")
	vm.facts.Backend = "smolvm"
	p := newProgram(t, newFake(busy, vm), Options{})
	for _, width := range []int{80, 200} {
		p.send(tea.WindowSizeMsg{Width: width, Height: 24})
		if l := p.line("busy"); !strings.Contains(l, " 42.2% ") || !strings.Contains(l, " 300.0M ") {
			t.Errorf("%d columns: the busy bottle's row %q lacks its usage", width, l)
		}
		if l := p.line("vm "); !regexp.MustCompile(`working +0 +1h +- +- `).MatchString(l) {
			t.Errorf("%d columns: the smolvm bottle's row %q does not say its usage is unknown", width, l)
		}
	}
	p.key("enter")
	if !p.has("CPU 42.2% · memory 300.0M") {
		t.Errorf("the bottle's screen lacks its usage:\n%s", strings.Join(p.screen(), "\n"))
	}
}

// TestNewBottleShowsThePreflightAndStartsOnYes: n asks for the
// repository (the dashboard's directory first), checks the bottle off
// the UI loop, shows its preflight and starts it on y only; the next poll
// lists it. Any other answer, esc, or a bottle that cannot start starts
// nothing.
func TestNewBottleShowsThePreflightAndStartsOnYes(t *testing.T) {
	f := newFake(running("old"))
	var checked, started []string
	o := Options{Dir: "/src/app", NewBottle: func(_ context.Context, repo string) (Preflight, error) {
		checked = append(checked, repo)
		if repo == "/nowhere" {
			return Preflight{}, errors.New("/nowhere is not a directory")
		}
		return Preflight{Text: "Bottle app on " + repo + "\n  may connect to  api.example.com ports 443, 80", Start: func(context.Context) (string, error) {
			started = append(started, repo)
			f.mu.Lock()
			f.bottles["app"] = running("app")
			f.mu.Unlock()
			return "app", nil
		}}, nil
	}}
	p := newProgram(t, f, o)
	p.key("n")
	if !p.has("New bottle of the repository: /src/app") {
		t.Fatalf("n does not ask for the repository:\n%s", strings.Join(p.screen(), "\n"))
	}
	// Typing edits the path; a key of the list does nothing meanwhile.
	p.key("backspace", "backspace", "backspace", "x", "q")
	if p.quit || !p.has("New bottle of the repository: /src/xq") {
		t.Fatalf("typing: quit %v\n%s", p.quit, strings.Join(p.screen(), "\n"))
	}
	p.key("esc")
	if len(checked) != 0 || p.has("New bottle of") {
		t.Fatalf("esc: checked %v", checked)
	}

	// A preflight answered with anything but y starts nothing.
	p.key("n", "enter")
	if !slices.Equal(checked, []string{"/src/app"}) || !p.has("NEW BOTTLE") || !p.has("may connect to  api.example.com ports 443, 80") ||
		!p.has("Start this bottle? [y/N]") {
		t.Fatalf("the preflight is not shown (checked %v):\n%s", checked, strings.Join(p.screen(), "\n"))
	}
	p.key("n")
	if len(started) != 0 || p.has("NEW BOTTLE") || !p.has("Cancelled.") {
		t.Fatalf("n to the preflight: started %v\n%s", started, strings.Join(p.screen(), "\n"))
	}

	// y starts it, and the list shows it.
	p.key("n", "enter", "y")
	if !slices.Equal(started, []string{"/src/app"}) || !p.has("Started bottle app.") || p.line("app ") == "" {
		t.Fatalf("y to the preflight: started %v\n%s", started, strings.Join(p.screen(), "\n"))
	}

	// A bottle that cannot start says why, and starts nothing.
	p.key("n", "ctrl+u")
	for _, k := range "/nowhere" {
		p.key(string(k))
	}
	p.key("enter")
	if len(started) != 1 || !p.has("Error: no bottle of /nowhere: /nowhere is not a directory") {
		t.Fatalf("a repository that is none: started %v\n%s", started, strings.Join(p.screen(), "\n"))
	}

	// Without the command, the key says what to use instead.
	p = newProgram(t, f, Options{})
	p.key("n")
	if !p.has("docker bottle run --preflight") {
		t.Errorf("n without NewBottle: %q", p.m.status)
	}
}
