package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

// Options shape the program.
type Options struct {
	// Interval is the time between the end of one poll and the next.
	Interval time.Duration
	Poll     PollOptions
	// Attach returns the command that attaches the user's terminal to a
	// bottle's agent until it detaches; nil when attaching is not
	// offered. An error with an ExitCode method says the agent ended.
	Attach func(name string) tea.ExecCommand
	// Diff returns the command that shows what the agent of a bottle
	// pushed, in a pager the user leaves to come back; nil when not
	// offered. The error it ends with is shown.
	Diff func(name string) tea.ExecCommand
	// NewBottle checks a new bottle of the repository at repo, as `docker
	// bottle run --preflight` does, and returns what it will be allowed
	// and how to start it; nil when starting bottles is not offered.
	NewBottle func(ctx context.Context, repo string) (Preflight, error)
	// Dir is the repository a new bottle is offered for first: where the
	// dashboard was started.
	Dir string
}

// Preflight is a new bottle, checked and not started.
type Preflight struct {
	// Text says what the bottle will be allowed, safe for a terminal.
	Text string
	// Start makes the bottle and starts it detached, and returns its
	// name.
	Start func(ctx context.Context) (string, error)
}

// Run shows the dashboard on the terminal in and out until the user quits
// (q, Ctrl-C) or ctx ends, and leaves the terminal as it found it. Bubble
// Tea shows the colours the terminal has, none with NO_COLOR.
func Run(ctx context.Context, src Source, in io.Reader, out io.Writer, o Options) error {
	p := tea.NewProgram(New(ctx, src, o), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	_, err := p.Run()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// focus is the table the arrow keys move in.
type focus int

const (
	onBottles focus = iota
	onQueue
)

// Model is the dashboard as a Bubble Tea model.
type Model struct {
	ctx context.Context
	src Source
	o   Options
	st  *State
	sty styles

	width, height int
	focus         focus
	// selBottle and selHeld keep the selection on the same bottle and
	// request while the lists reorder.
	selBottle, selHeld string
	// detail is the bottle shown in full; "" for the lists.
	detail string
	// confirm is the action that waits for y; nil when none does.
	confirm *confirmation
	// repo is the repository typed for a new bottle; nil when none is
	// asked for.
	repo *string
	// preflight is what the new bottle waiting for y will be allowed.
	preflight string
	status    string
	polling   bool
	// pollAgain: something changed while a poll ran; poll once more.
	pollAgain bool
	// title is the terminal's: it counts the waiting bottles.
	title string
	// tickGen numbers the ticks: one chain of polls runs, however often
	// an action asked for a poll in between.
	tickGen int
}

type confirmation struct {
	prompt string
	run    func() tea.Cmd
}

// Messages.
type (
	snapshotMsg Snapshot
	// tickMsg asks for the next poll; gen tells the last tick asked for
	// from the others, which are dropped.
	tickMsg struct{ gen int }
	// preflightMsg is a new bottle checked, or why it cannot start.
	preflightMsg struct {
		repo string
		pf   Preflight
		err  error
	}
	// doneMsg ends an action: its outcome in words, or its error; held
	// names the request it settled.
	doneMsg struct {
		text string
		err  error
		held string
	}
)

// New returns the dashboard's model; calls to src are made with ctx.
func New(ctx context.Context, src Source, o Options) *Model {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return &Model{ctx: ctx, src: src, o: o, st: NewState(), sty: newStyles(), width: 80, height: 24, title: title}
}

// title is the terminal's title while no bottle waits.
const title = "docker bottle dashboard"

// bell rings the terminal's bell.
const bell = "\a"

// Init starts the first poll.
func (m *Model) Init() tea.Cmd {
	return m.poll()
}

// poll starts a poll unless one runs.
func (m *Model) poll() tea.Cmd {
	if m.polling {
		m.pollAgain = true
		return nil
	}
	m.polling = true
	ctx, src, req, o := m.ctx, m.src, m.st.Request(m.detail), m.o.Poll
	return func() tea.Msg { return snapshotMsg(Poll(ctx, src, req, o)) }
}

// Update takes a message in.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case snapshotMsg:
		m.polling = false
		started := m.st.Apply(Snapshot(msg))
		var cmds []tea.Cmd
		if len(started) > 0 {
			cmds = append(cmds, tea.Raw(bell))
		}
		m.title = title
		if n := m.st.WaitingCount(); n > 0 {
			m.title = fmt.Sprintf("(%d waiting) %s", n, title)
		}
		if m.pollAgain {
			m.pollAgain = false
			cmds = append(cmds, m.poll())
		} else {
			m.tickGen++
			gen := m.tickGen
			cmds = append(cmds, tea.Tick(m.o.Interval, func(time.Time) tea.Msg { return tickMsg{gen} }))
		}
		return m, tea.Batch(cmds...)
	case tickMsg:
		if msg.gen != m.tickGen {
			return m, nil
		}
		return m, m.poll()
	case doneMsg:
		m.status = msg.text
		if msg.err != nil {
			m.status = "Error: " + msg.err.Error()
		} else if msg.held != "" {
			m.st.Decided(msg.held)
		}
		return m, m.poll()
	case preflightMsg:
		return m, m.preflighted(msg)
	case tea.KeyPressMsg:
		if m.repo != nil {
			return m, m.typeRepo(msg)
		}
		return m, m.key(msg.String())
	}
	return m, nil
}

// key acts on a key press.
func (m *Model) key(k string) tea.Cmd {
	if k == "ctrl+c" {
		return m.quit()
	}
	if c := m.confirm; c != nil {
		m.confirm, m.preflight = nil, ""
		if k == "y" || k == "Y" {
			return c.run()
		}
		m.status = "Cancelled."
		return nil
	}
	switch k {
	case "q":
		return m.quit()
	case "tab":
		if m.detail == "" {
			m.focus = 1 - m.focus
		}
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "enter":
		if b, ok := m.selected(); ok {
			m.detail = b.Name
			return m.poll()
		}
	case "esc", "backspace":
		m.detail = ""
	case "a":
		return m.decide(approval.AllowOnce)
	case "A":
		return m.decide(approval.AllowAlways)
	case "d":
		return m.decide(approval.Deny)
	case "s":
		return m.ask("Stop", "Stopped", m.src.Stop)
	case "S":
		return m.ask("Start", "Started", m.src.Start)
	case "x":
		return m.ask("Remove", "Removed", m.src.Remove)
	case "t":
		return m.attach()
	case "v":
		return m.diff()
	case "n":
		return m.newBottle()
	}
	return nil
}

// newBottle asks for the repository of a new bottle, the dashboard's own
// directory first.
func (m *Model) newBottle() tea.Cmd {
	if m.o.NewBottle == nil {
		m.status = "Starting a bottle is not available here: use `docker bottle run --preflight`."
		return nil
	}
	repo := m.o.Dir
	m.repo = &repo
	return nil
}

// typeRepo takes a key typed into the repository's path: enter checks
// the bottle off the UI loop, esc gives up.
func (m *Model) typeRepo(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "ctrl+c":
		return m.quit()
	case "esc":
		m.repo, m.status = nil, "Cancelled."
	case "enter":
		repo, ctx, check := *m.repo, m.ctx, m.o.NewBottle
		m.repo, m.status = nil, "Checking a new bottle of "+repo+"..."
		return func() tea.Msg {
			pf, err := check(ctx, repo)
			return preflightMsg{repo: repo, pf: pf, err: err}
		}
	case "backspace":
		if r := []rune(*m.repo); len(r) > 0 {
			*m.repo = string(r[:len(r)-1])
		}
	case "ctrl+u":
		*m.repo = ""
	default:
		// Typed text only: no control character reaches the screen.
		*m.repo += strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
				return -1
			}
			return r
		}, k.Text)
	}
	return nil
}

// preflighted shows what a checked bottle will be allowed and asks to
// start it; on y it starts off the UI loop, and the next poll lists it.
func (m *Model) preflighted(msg preflightMsg) tea.Cmd {
	if msg.err != nil {
		m.status = "Error: no bottle of " + msg.repo + ": " + msg.err.Error()
		return nil
	}
	ctx, start := m.ctx, msg.pf.Start
	m.preflight, m.status = msg.pf.Text, ""
	m.confirm = &confirmation{prompt: "Start this bottle? [y/N]", run: func() tea.Cmd {
		m.status = "Starting a bottle of " + msg.repo + "..."
		return func() tea.Msg {
			name, err := start(ctx)
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "Started bottle " + name + "."}
		}
	}}
	return nil
}

// quit ends the program; Bubble Tea gives the terminal back as it was
// (the main screen, the cursor, the title).
func (m *Model) quit() tea.Cmd { return tea.Quit }

// move moves the selection in the focused list.
func (m *Model) move(by int) {
	if m.detail != "" {
		return
	}
	if m.focus == onQueue {
		q := m.st.Queue()
		if i := clamp(indexHeld(q, m.selHeld)+by, len(q)); i >= 0 {
			m.selHeld = q[i].ID
		}
		return
	}
	bs := m.st.Bottles()
	if i := clamp(indexBottle(bs, m.selBottle)+by, len(bs)); i >= 0 {
		m.selBottle = bs[i].Name
	}
}

// clamp keeps i within a list of n; -1 when it is empty.
func clamp(i, n int) int { return max(0, min(i, n-1)) }

// indexBottle is the index of the bottle called name, 0 when it is gone.
func indexBottle(bs []Bottle, name string) int {
	for i, b := range bs {
		if b.Name == name {
			return i
		}
	}
	return 0
}

// indexHeld is the index of request id, 0 when it is gone.
func indexHeld(q []Held, id string) int {
	for i, h := range q {
		if h.ID == id {
			return i
		}
	}
	return 0
}

// selected is the bottle the keys act on: the one in detail, the
// selected one, or the one of the selected request.
func (m *Model) selected() (Bottle, bool) {
	name := m.detail
	if name == "" && m.focus == onQueue {
		if h, ok := m.selectedHeld(); ok {
			name = h.Bottle
		}
	}
	if name == "" {
		bs := m.st.Bottles()
		if len(bs) == 0 {
			return Bottle{}, false
		}
		name = bs[indexBottle(bs, m.selBottle)].Name
	}
	return m.st.Bottle(name)
}

// selectedHeld is the request the decision keys act on: the selected one
// in the queue, else the oldest of the selected bottle.
func (m *Model) selectedHeld() (Held, bool) {
	if m.detail == "" && m.focus == onQueue {
		q := m.st.Queue()
		if len(q) == 0 {
			return Held{}, false
		}
		return q[indexHeld(q, m.selHeld)], true
	}
	b, ok := m.selected()
	if !ok || len(b.Held) == 0 {
		return Held{}, false
	}
	return b.Held[0], true
}

// decide settles the selected request through the Source, with the rules
// of `approvals -i`.
func (m *Model) decide(d approval.Decision) tea.Cmd {
	h, ok := m.selectedHeld()
	if !ok {
		m.status = "No request is waiting there."
		return nil
	}
	ctx, src := m.ctx, m.src
	m.status = fmt.Sprintf("Deciding %s %s of %s...", h.Kind, h.Subject, h.Bottle)
	return func() tea.Msg {
		text, err := src.Decide(ctx, h.Bottle, h.ID, d)
		return doneMsg{text: fmt.Sprintf("%s: %s %s: %s", h.Bottle, h.Kind, h.Subject, text), err: err, held: h.ID}
	}
}

// ask asks the user to confirm an action on the selected bottle.
func (m *Model) ask(verb, done string, act func(context.Context, string) error) tea.Cmd {
	b, ok := m.selected()
	if !ok {
		m.status = "No bottle is selected."
		return nil
	}
	ctx, name := m.ctx, b.Name
	m.confirm = &confirmation{prompt: fmt.Sprintf("%s bottle %s? [y/N]", verb, name), run: func() tea.Cmd {
		m.status = fmt.Sprintf("%s %s...", verb, name)
		return func() tea.Msg {
			if err := act(ctx, name); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: done + " " + name + "."}
		}
	}}
	return nil
}

// attach gives the terminal to the selected bottle's agent until it
// detaches, then shows the dashboard again.
func (m *Model) attach() tea.Cmd {
	b, ok := m.selected()
	switch {
	case !ok:
		m.status = "No bottle is selected."
		return nil
	case m.o.Attach == nil:
		m.status = "Attaching is not available here: use `docker bottle attach " + b.Name + "`."
		return nil
	case b.Agent != "running":
		m.status = "The agent of " + b.Name + " does not run."
		return nil
	}
	return tea.Exec(m.o.Attach(b.Name), m.attached(b.Name))
}

// diff shows what the selected bottle's agent pushed until the user leaves
// the pager; what went wrong (nothing pushed yet) is said on the status
// line, as the screen it was written to is gone by then.
func (m *Model) diff() tea.Cmd {
	b, ok := m.selected()
	switch {
	case !ok:
		m.status = "No bottle is selected."
		return nil
	case m.o.Diff == nil:
		m.status = "Showing the changes is not available here: use `docker bottle diff " + b.Name + "`."
		return nil
	}
	return tea.Exec(m.o.Diff(b.Name), m.diffEnded(b.Name))
}

// diffEnded says how showing the changes of bottle name ended, with the
// error it ended with.
func (m *Model) diffEnded(name string) tea.ExecCallback {
	return func(err error) tea.Msg {
		if err == nil {
			return doneMsg{text: "Back from the changes of " + name + "."}
		}
		// The message may quote the bottle's branch, which is not ours.
		why := strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
				return -1
			}
			return r
		}, ansi.Strip(err.Error()))
		return doneMsg{text: "The changes of " + name + " cannot be shown: " + why}
	}
}

// attached says how an attach to bottle name ended.
func (m *Model) attached(name string) tea.ExecCallback {
	return func(err error) tea.Msg {
		// The attach ends with the agent's exit code when the agent ends.
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			return doneMsg{text: fmt.Sprintf("Back from %s: the attach ended with exit code %d.", name, ee.ExitCode())}
		}
		return doneMsg{text: "Back from " + name + ".", err: err}
	}
}
