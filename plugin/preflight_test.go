package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/spec"
)

// TestConfirmStart: y and yes start the bottle, any other answer or the
// end of the input does not, and Ctrl-C (the context's end) ends the
// question.
func TestConfirmStart(t *testing.T) {
	for in, want := range map[string]error{
		"y\n": nil, "YES\n": nil, " y \n": nil,
		"n\n": errNotConfirmed, "\n": errNotConfirmed, "": errNotConfirmed, "yess\n": errNotConfirmed,
	} {
		var out strings.Builder
		if err := confirmStart(context.Background(), strings.NewReader(in), &out); !errors.Is(err, want) {
			t.Errorf("answer %q: %v, want %v", in, err, want)
		}
		if !strings.Contains(out.String(), "Start this bottle? [y/N]") {
			t.Errorf("the question is not asked: %q", out.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, w := io.Pipe()
	defer w.Close()
	if err := confirmStart(ctx, r, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: %v, want context.Canceled", err)
	}
}

// TestPreflightRefusesFormatJSON: --format json prints a dry run's plan;
// with --preflight, which a person reads and answers, it is refused before
// anything is made, and the refusal names what a script uses instead.
// Without --dry-run it is refused too, and with it, the combination
// --preflight --dry-run still is.
func TestPreflightRefusesFormatJSON(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--preflight", "--format", "json"}, "run --dry-run --format json"},
		{[]string{"--preflight", "--yes", "--format", "json"}, "not --preflight"},
		{[]string{"--preflight", "--dry-run", "--format", "json"}, "not --preflight"},
		{[]string{"--format", "json"}, "--format json goes with --dry-run: a started bottle"},
		{[]string{"--dry-run", "--format", "yaml"}, `--format "yaml" is not supported`},
	} {
		out, errOut, err := runCommand(ctx, t, append(append([]string{"run"}, c.args...), t.TempDir())...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want an error with %q", c.args, err, c.want)
		}
		if out != "" || errOut != "" {
			t.Errorf("run %q wrote %q %q", c.args, out, errOut)
		}
	}
	if err := checkRunFormat("json", true, false); err != nil {
		t.Errorf("--dry-run --format json: %v", err)
	}
}

// TestConfigWarnsOfSharedHostingWildcards: config says on stderr, and the
// preflight in its output, when an allow rule is a wildcard over a suffix
// where anyone can host content; the spec is still accepted.
func TestConfigWarnsOfSharedHostingWildcards(t *testing.T) {
	useStateDir(t)
	dir := t.TempDir()
	t.Chdir(dir)
	yml := "egress:\n  allow:\n    - host: \"*.githubusercontent.com\"\n    - host: api.github.com\n"
	if err := os.WriteFile(filepath.Join(dir, "bottle.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCommand(context.Background(), t, "config", "--format", "json")
	if err != nil || !json.Valid([]byte(out)) {
		t.Fatalf("config: %q %v", out, err)
	}
	if !strings.Contains(errOut, "Warning: $.egress.allow[0].host: *.githubusercontent.com lets the agent reach") || strings.Contains(errOut, "api.github.com") {
		t.Errorf("config's stderr = %q, want one warning about *.githubusercontent.com", errOut)
	}

	ls, err := loadSpec(specOptions{}, dir, spec.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	writeSpecWarnings(&b, &ls.spec)
	if !strings.HasPrefix(b.String(), "Warning: $.egress.allow[0].host: *.githubusercontent.com") {
		t.Errorf("preflight warnings = %q", b.String())
	}
}
