package plugin

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
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
