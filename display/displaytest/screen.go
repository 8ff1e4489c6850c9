// Package displaytest replays what a terminal display wrote, as a
// terminal would show it, for tests.
package displaytest

import (
	"strconv"
	"strings"
)

// Screen is a terminal of a fixed width and unbounded height that
// understands what the progress display and a pty's line discipline send:
// printable text (wrapping at the width, as terminals do), CR, LF (as a
// pty sends it by default, CR LF), cursor
// up (CSI n A), erase line (CSI 2 K, CSI K) and erase below (CSI J).
// Other escape sequences are ignored.
type Screen struct {
	Width     int
	lines     [][]rune
	row, col  int
	Unhandled []string // escape sequences it ignored
}

// Replay feeds out to a new screen of the given width.
func Replay(out string, width int) *Screen {
	s := &Screen{Width: width}
	s.Write([]byte(out))
	return s
}

func (s *Screen) ensure() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

// Write implements io.Writer.
func (s *Screen) Write(p []byte) (int, error) {
	rs := []rune(string(p))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\r':
			s.col = 0
		case r == '\n':
			// A terminal's output processing (onlcr) starts the next
			// line at its first column.
			s.row, s.col = s.row+1, 0
			s.ensure()
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] < 0x40 || rs[j] > 0x7e) {
				j++
			}
			if j >= len(rs) {
				return len(p), nil
			}
			s.csi(string(rs[i+2:j]), rs[j])
			i = j
		case r < 0x20:
		default:
			if s.col >= s.Width {
				s.row, s.col = s.row+1, 0
			}
			s.ensure()
			line := s.lines[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = r
			s.lines[s.row] = line
			s.col++
		}
	}
	return len(p), nil
}

func (s *Screen) csi(params string, final rune) {
	n, err := strconv.Atoi(params)
	if err != nil {
		n = 0
	}
	s.ensure()
	switch {
	case final == 'A':
		s.row = max(0, s.row-max(n, 1))
	case final == 'K' && (params == "2"):
		s.lines[s.row] = nil
	case final == 'K' && (params == "" || params == "0"):
		if s.col < len(s.lines[s.row]) {
			s.lines[s.row] = s.lines[s.row][:s.col]
		}
	case final == 'J' && (params == "" || params == "0"):
		if s.col < len(s.lines[s.row]) {
			s.lines[s.row] = s.lines[s.row][:s.col]
		}
		s.lines = s.lines[:s.row+1]
	default:
		s.Unhandled = append(s.Unhandled, params+string(final))
	}
}

// Lines is what the screen shows, trailing blanks and empty last lines
// removed.
func (s *Screen) Lines() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// Cursor is the cursor's row and column.
func (s *Screen) Cursor() (row, col int) { return s.row, s.col }
