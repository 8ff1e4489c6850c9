package dashboard

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// styles colour the screen; with no colours (NO_COLOR, a dumb terminal)
// the marks and the selection's ">" still say everything.
type styles struct {
	title, header, selected, waiting, failed, dim lipgloss.Style
}

func newStyles() styles {
	return styles{
		title:    lipgloss.NewStyle().Bold(true),
		header:   lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("8")),
		selected: lipgloss.NewStyle().Reverse(true),
		waiting:  lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("3")),
		failed:   lipgloss.NewStyle().Foreground(lipgloss.Color("1")),
		dim:      lipgloss.NewStyle().Foreground(lipgloss.Color("8")),
	}
}

// View is the screen on the alternate screen, with the terminal's title.
func (m *Model) View() tea.View {
	v := tea.NewView(m.screen())
	v.AltScreen = true
	v.WindowTitle = m.title
	return v
}

// screen draws the screen: never wider than the terminal nor taller.
func (m *Model) screen() string {
	var body []string
	switch {
	case m.preflight != "":
		body = m.preflightView()
	case m.detail != "":
		body = m.detailView()
	default:
		body = m.listView()
	}
	height := max(m.height, 4)
	lines := make([]string, 0, height)
	lines = append(lines, m.titleLine())
	lines = append(lines, body[:min(len(body), height-3)]...)
	for len(lines) < height-2 {
		lines = append(lines, "")
	}
	lines = append(lines, m.statusLine(), m.sty.dim.Render(m.help()))
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.width, "…")
	}
	return strings.Join(lines, "\n")
}

func (m *Model) titleLine() string {
	bs := m.st.Bottles()
	t := fmt.Sprintf("docker bottle dashboard · %d bottles · %d held requests", len(bs), len(m.st.Queue()))
	if n := m.st.WaitingCount(); n > 0 {
		return m.sty.title.Render(t+" · ") + m.sty.waiting.Render(fmt.Sprintf("%d waiting for you", n))
	}
	return m.sty.title.Render(t)
}

func (m *Model) statusLine() string {
	switch {
	case m.confirm != nil:
		return m.sty.waiting.Render(m.confirm.prompt)
	case m.repo != nil:
		return "New bottle of the repository: " + *m.repo + "█"
	case m.st.ListErr != "":
		return m.sty.failed.Render("Cannot list the bottles: " + m.st.ListErr)
	}
	return m.status
}

func (m *Model) help() string {
	switch {
	case m.confirm != nil:
		return "y confirm · any other key cancels"
	case m.repo != nil:
		return "enter check it · esc cancel · ctrl+u clear"
	case m.detail != "":
		return "a allow  A always  d deny  v changes  s/S stop/start  x rm  t attach  esc back"
	}
	if m.width >= 110 {
		return "a allow  A always  d deny  tab queue  enter open  v changes  s/S stop/start  x rm  t attach  n new  q quit"
	}
	return "a allow  A always  d deny  enter open  s/S stop/start  x rm  t attach  n new  q"
}

// columns lays out cells of the given widths, the last one taking the
// rest of the line.
func columns(widths []int, cells ...string) string {
	var b strings.Builder
	for i, c := range cells {
		if i < len(widths) {
			b.WriteString(pad(c, widths[i]))
			b.WriteByte(' ')
		} else {
			b.WriteString(c)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// pad cuts or fills s to exactly w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}

// since says a duration the short way: 5s, 3m, 2h, 4d.
func since(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// where is a bottle's repository and branch: "repo bottle/x".
func where(b Bottle) string {
	repo := filepath.Base(b.Repo)
	if b.Repo == "" {
		repo = "-"
	}
	return repo + " " + b.Branch
}

// listView is the bottles, then the queue of held requests.
func (m *Model) listView() []string {
	bs, q := m.st.Bottles(), m.st.Queue()
	now := time.Now()
	room := max(m.height-3, 2) // title, status and help
	// The bottles get half the room when requests wait, all but the
	// queue's heading else.
	bottleRoom := room - 6
	if len(q) > 0 {
		bottleRoom = max(3, (room-3)/2)
	}
	nameW, maxName := 8, 16
	if m.width >= 100 {
		maxName = 24
	}
	for _, b := range bs {
		nameW = max(nameW, min(ansi.StringWidth(b.Name), maxName))
	}
	// mark, name, state, held, age, CPU, memory, the backend when there
	// is room (the bottle's own screen shows it); then where, and the
	// last line of output when there is room.
	widths := []int{2, nameW, 15, 4, 4, 6, 6}
	header := []string{"", "NAME", "STATE", "HELD", "AGE", "CPU", "MEM"}
	withBackend := m.width >= 100
	if withBackend {
		widths, header = append(widths, 7), append(header, "BACKEND")
	}
	used := len(widths)
	for _, w := range widths {
		used += w
	}
	rest := m.width - used
	wide := rest >= 60
	header = append(header, "REPOSITORY BRANCH")
	if wide {
		widths = append(widths, rest/2)
		header = append(header, "LAST OUTPUT")
	}
	lines := []string{"", m.sty.header.Render(columns(widths, header...))}
	if len(bs) == 0 {
		lines = append(lines, "  No bottles: start one with `docker bottle run`.")
	}
	sel := indexBottle(bs, m.selBottle)
	first, last := window(sel, len(bs), bottleRoom-1)
	for i := first; i < last; i++ {
		b := bs[i]
		mark := " "
		if m.detail == "" && m.focus == onBottles && i == sel {
			mark = ">"
		}
		if b.Kind == Waiting {
			mark += "!"
		}
		held := fmt.Sprint(len(b.Held))
		if b.Trouble != "" {
			held = "?"
		}
		age := "-"
		if !b.Created.IsZero() {
			age = since(now.Sub(b.Created))
		}
		cells := []string{mark, b.Name, b.State(), held, age, b.Usage.CPUText(), b.Usage.MemoryText()}
		if withBackend {
			cells = append(cells, b.Backend)
		}
		cells = append(cells, where(b))
		if wide {
			cells = append(cells, b.LastLine)
		}
		if b.Trouble != "" {
			cells[len(cells)-1] = b.Trouble
		}
		lines = append(lines, m.rowStyle(b, mark).Render(columns(widths, cells...)))
	}
	if last < len(bs) || first > 0 {
		lines = append(lines, m.sty.dim.Render(fmt.Sprintf("  (%d of %d bottles shown)", last-first, len(bs))))
	}

	lines = append(lines, "", m.sty.header.Render(fmt.Sprintf("HELD REQUESTS (%d)", len(q)))+m.sty.dim.Render("  tab moves here and back"))
	if len(q) == 0 {
		return append(lines, "  None: every bottle goes on by itself.")
	}
	hw := []int{2, 6, nameW, 4, 4}
	lines = append(lines, m.sty.header.Render(columns(hw, "", "KIND", "BOTTLE", "AGE", "LEFT", "WHAT")))
	qsel := indexHeld(q, m.selHeld)
	qRoom := max(1, room-len(lines))
	first, last = window(qsel, len(q), qRoom)
	for i := first; i < last; i++ {
		h := q[i]
		mark := " "
		if m.focus == onQueue && i == qsel {
			mark = ">"
		}
		row := columns(hw, mark, string(h.Kind), h.Bottle, since(now.Sub(h.Since)), since(h.Deadline.Sub(now)), what(h))
		if mark == ">" {
			row = m.sty.selected.Render(row)
		}
		lines = append(lines, row)
	}
	return lines
}

// rowStyle colours a bottle's row: selected, waiting or failed.
func (m *Model) rowStyle(b Bottle, mark string) lipgloss.Style {
	switch {
	case strings.HasPrefix(mark, ">"):
		return m.sty.selected
	case b.Kind == Waiting:
		return m.sty.waiting
	case b.Kind == Failed || b.Trouble != "":
		return m.sty.failed
	}
	return lipgloss.NewStyle()
}

// what is what exactly a request asks: its subject, and the detail (paths
// touched, a tool's arguments).
func what(h Held) string {
	if h.Detail == "" {
		return h.Subject
	}
	return h.Subject + " — " + h.Detail
}

// window is the part [first, last) of a list of n that shows item sel in
// room lines.
func window(sel, n, room int) (first, last int) {
	room = max(room, 1)
	if n <= room {
		return 0, n
	}
	first = max(0, min(sel-room/2, n-room))
	return first, first + room
}

// preflightView is what a new bottle will be allowed, wrapped to the
// terminal's width.
func (m *Model) preflightView() []string {
	lines := []string{"", m.sty.header.Render("NEW BOTTLE")}
	for _, l := range strings.Split(strings.TrimRight(m.preflight, "\n"), "\n") {
		lines = append(lines, strings.Split(ansi.Wrap(l, max(m.width, 20), " ,"), "\n")...)
	}
	return lines
}

// detailView is one bottle in full: its state, what it holds and its feed.
func (m *Model) detailView() []string {
	b, ok := m.st.Bottle(m.detail)
	if !ok {
		return []string{"", "Bottle " + m.detail + " is gone.", "", "esc goes back to the list."}
	}
	now := time.Now()
	lines := []string{"",
		m.rowStyle(b, "").Render(fmt.Sprintf("%s · %s", b.Name, b.State())) +
			fmt.Sprintf(" · %s · %s", b.Backend, where(b)),
		fmt.Sprintf("created %s ago · in this state for %s · CPU %s · memory %s", since(now.Sub(b.Created)), since(now.Sub(b.Since)),
			b.Usage.CPUText(), b.Usage.MemoryText()),
	}
	for _, s := range []string{b.Why(), b.Trouble, b.Health} {
		if s != "" {
			lines = append(lines, m.sty.failed.Render(s))
		}
	}
	if b.LastLine != "" {
		lines = append(lines, "last output: "+b.LastLine)
	}
	lines = append(lines, "", m.sty.header.Render(fmt.Sprintf("HELD REQUESTS (%d)", len(b.Held))))
	for i, h := range b.Held {
		if i == 3 {
			lines = append(lines, fmt.Sprintf("  and %d more", len(b.Held)-i))
			break
		}
		mark := " "
		if i == 0 {
			mark = ">" // the decision keys act on the oldest
		}
		lines = append(lines, columns([]int{2, 6, 4, 4}, mark, string(h.Kind), since(now.Sub(h.Since)), since(h.Deadline.Sub(now)), what(h)))
	}
	lines = append(lines, "", m.sty.header.Render("EVENTS AND EGRESS"))
	feed := append(slices.Clone(b.Events), b.Audit...)
	slices.SortStableFunc(feed, func(x, y Line) int { return x.Time.Compare(y.Time) })
	room := max(1, m.height-3-len(lines))
	if len(feed) == 0 {
		lines = append(lines, "  Nothing yet.")
	}
	for _, l := range last(feed, room) {
		lines = append(lines, columns([]int{8, 10, 18}, l.Time.Local().Format("15:04:05"), l.Source, l.Type, l.Text))
	}
	return lines
}
