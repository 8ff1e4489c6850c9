package plugin

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
)

func TestCleanEscapesWhatCouldSpoofATerminal(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"refs/heads/bottle/x/fix", "refs/heads/bottle/x/fix"},
		{"café 日本", "café 日本"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"a\u009bb", `a\x9bb`},
		{"line1\nline2\tend", `line1\nline2 end`},
		// Bidi overrides and isolates: a name that reads backwards.
		{"Bash(ls)\u202egnp.exe", `Bash(ls)\u202egnp.exe`},
		{"refs/heads/\u2066main\u2069", `refs/heads/\u2066main\u2069`},
		// Zero-width characters, the BOM, line and paragraph separators.
		{"ma\u200bin\u200d\ufeff", `ma\u200bin\u200d\ufeff`},
		{"a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"bad\xffutf8", `bad\xffutf8`},
	} {
		if got := clean(c.in); got != c.want {
			t.Errorf("clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTerminalFilter(t *testing.T) {
	in := "\x1b[32m+green\x1b[m\r\n" + // colors pass
		"\x1b]52;c;cGF5bG9hZA==\x07clip\n" + // OSC 52 writes the clipboard
		"\x1b[2J\x1b[Hwipe\n" + // clear the screen, move the cursor
		"\x1b]8;;http://x.test\x1b\\link\x1b]8;;\x1b\\\n" + // a hyperlink
		"over\rwrite\n" +
		"bi\u202edi \u2067x\u2069 zw\u200b 日本\n" +
		"\x1b[" + strings.Repeat("1;", 40) + "m long\n" +
		"end\x1b["
	want := "\x1b[32m+green\x1b[m\r\n" +
		`\x1b]52;c;cGF5bG9hZA==\x07clip` + "\n" +
		`\x1b[2J\x1b[Hwipe` + "\n" +
		`\x1b]8;;http://x.test\x1b\link\x1b]8;;\x1b\` + "\n" +
		`over\rwrite` + "\n" +
		`bi\u202edi \u2067x\u2069 zw\u200b 日本` + "\n" +
		`\x1b[` + strings.Repeat("1;", 40) + "m long\n" +
		`end\x1b[`
	// Whatever the chunks the stream comes in.
	for _, size := range []int{1, 2, 3, 7, len(in)} {
		var out bytes.Buffer
		f := newTerminalFilter(&out)
		for i := 0; i < len(in); i += size {
			if _, err := f.Write([]byte(in[i:min(i+size, len(in))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("in chunks of %d:\n got %q\nwant %q", size, out.String(), want)
		}
	}
}

// TestCommandsShowTheAgentsTextEscaped: a request and an event whose text
// the agent chose, with a bidi override and an escape sequence, are shown
// escaped by approvals and events.
func TestCommandsShowTheAgentsTextEscaped(t *testing.T) {
	b := newBottle(t, "spoof")
	ctx := context.Background()
	b.hold(approval.Egress, "evil.test\u202e:443")
	b.waitPending(t, 1)
	if _, err := b.agent.PostEvent(ctx, "tool.use", "ran \x1b]52;c;eA==\x07 \u2066main\u2069", nil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"approvals", b.name}, {"events", b.name}} {
		out, _, err := runCommand(ctx, t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.ContainsAny(out, "\u202e\u2066\u2069\x1b") {
			t.Errorf("%v shows the agent's control or format characters: %q", args, out)
		}
		if !strings.Contains(out, `\u202e`) {
			t.Errorf("%v does not show the override escaped: %q", args, out)
		}
	}
}
