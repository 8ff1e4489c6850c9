package plugin

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker-bottle/docker-bottle/internal/dockercli"
)

// Text that came from the bottle (branch and file names, event messages,
// tool subjects, the agent's output) is the agent's, and the agent is
// hostile: on the user's terminal, escape sequences could move the cursor,
// rewrite what is shown, set hyperlinks or the clipboard, and Unicode
// format characters (bidi overrides, zero-width joiners) could make a name
// read differently from what it is. So both are shown escaped.

// needsEscape reports whether r must not reach a terminal as it is: C0 and
// C1 controls, format characters (Cf: bidi overrides and isolates,
// zero-width characters, the BOM), line and paragraph separators, and the
// replacement for bytes that are not UTF-8.
func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}

// writeEscaped writes r as Go would quote it: \x1b, \u202e.
func writeEscaped(b *strings.Builder, r rune) {
	if r < 0x100 {
		fmt.Fprintf(b, `\x%02x`, r)
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// clean makes text that came from the bottle safe for one cell or line of
// a table: control and format characters are shown escaped, a newline as
// \n, a tab as a space.
func clean(s string) string {
	if strings.IndexFunc(s, needsEscape) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteByte(' ')
		case needsEscape(r):
			writeEscaped(&b, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// maxSGR bounds a color sequence the terminal filter passes; longer ones
// are shown escaped.
const maxSGR = 32

// terminalFilter writes a stream of the agent's output (logs, a diff) to a
// terminal with what could take the terminal over shown escaped: every
// escape sequence but colors (SGR: ESC [ digits and semicolons m, which
// can only color text), every control character but newline and tab, a
// carriage return that does not end a line, and format characters. It
// holds back an incomplete character or sequence until the next Write;
// Close writes what is left, escaped.
type terminalFilter struct {
	w       io.Writer
	pending []byte
}

func newTerminalFilter(w io.Writer) *terminalFilter { return &terminalFilter{w: w} }

func (f *terminalFilter) Write(p []byte) (int, error) {
	buf := append(f.pending, p...)
	out, rest := filterTerminal(buf, false)
	f.pending = append(f.pending[:0:0], rest...)
	if _, err := io.WriteString(f.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what was held back.
func (f *terminalFilter) Close() error {
	out, _ := filterTerminal(f.pending, true)
	f.pending = nil
	_, err := io.WriteString(f.w, out)
	return err
}

// filterTerminal filters buf and returns the filtered text and the tail
// it could not judge yet (an incomplete character or sequence); at the end
// of the stream (final) nothing is held back.
func filterTerminal(buf []byte, final bool) (string, []byte) {
	var b strings.Builder
	for i := 0; i < len(buf); {
		c := buf[i]
		switch {
		case c == '\n', c == '\t':
			b.WriteByte(c)
			i++
		case c == '\r':
			if i+1 == len(buf) && !final {
				return b.String(), buf[i:]
			}
			if i+1 < len(buf) && buf[i+1] == '\n' {
				b.WriteString("\r\n")
				i += 2
				continue
			}
			b.WriteString(`\r`)
			i++
		case c == 0x1b:
			n, complete := sgrLen(buf[i:])
			if !complete && !final {
				return b.String(), buf[i:]
			}
			if n > 0 {
				b.Write(buf[i : i+n])
				i += n
				continue
			}
			b.WriteString(`\x1b`)
			i++
		case c < utf8.RuneSelf:
			if needsEscape(rune(c)) {
				writeEscaped(&b, rune(c))
			} else {
				b.WriteByte(c)
			}
			i++
		default:
			if !utf8.FullRune(buf[i:]) && !final {
				return b.String(), buf[i:]
			}
			r, n := utf8.DecodeRune(buf[i:])
			switch {
			case r == utf8.RuneError && n <= 1:
				fmt.Fprintf(&b, `\x%02x`, c)
			case needsEscape(r):
				writeEscaped(&b, r)
			default:
				b.Write(buf[i : i+n])
			}
			i += n
		}
	}
	return b.String(), nil
}

// sgrLen is the length of the color sequence (ESC [ params m) at the start
// of s, 0 when s does not start with one; complete is false when s ends
// before that can be told.
func sgrLen(s []byte) (n int, complete bool) {
	for i := 1; i < len(s) && i <= maxSGR; i++ {
		c := s[i]
		switch {
		case i == 1:
			if c != '[' {
				return 0, true
			}
		case c >= '0' && c <= '9', c == ';':
		case c == 'm':
			return i + 1, true
		default:
			return 0, true
		}
	}
	return 0, len(s) > maxSGR
}

// agentOutput is where a command shows the agent's output: w itself when
// it is not a terminal (a file or a pipe gets the bytes as they came), a
// terminalFilter over it when it is. Call done when the output ends.
func agentOutput(w io.Writer) (out io.Writer, done func() error) {
	raw := dockercli.OutFile(w)
	if t, ok := w.(interface{ IsTerminal() bool }); !ok || !t.IsTerminal() {
		return raw, func() error { return nil }
	}
	f := newTerminalFilter(raw)
	return f, f.Close
}
