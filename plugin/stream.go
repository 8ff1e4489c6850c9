package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
)

// stream is one of the supervisor's streams (events, audit) as the
// commands show it: a list of what is kept, then with -f what follows.
type stream[T any] struct {
	// pre are shown first, before what the supervisor keeps.
	pre    []T
	list   func(ctx context.Context, after uint64) ([]T, error)
	follow func(ctx context.Context, after uint64, fn func(T) error) error
	seq    func(T) uint64
	// The default table has fixed widths, so that followed rows line up
	// with the listed ones: header and widths, and row's columns.
	header []string
	widths []int
	row    func(T) []string
	// Any other --format renders context(item) with docker's formatter;
	// fields has the headers of a table template.
	context func(T) formatter.SubContext
	fields  formatter.SubContext
}

// check renders an empty item in format before anything is asked, as
// `docker events` does, so that a mistyped field fails early.
func (s stream[T]) check(format string) error {
	var zero T
	return s.write(io.Discard, format, []T{zero})
}

// show prints what is kept first, then (with follow) what comes after it;
// the table's header is printed once the supervisor has answered.
func (s stream[T]) show(ctx context.Context, dockerCli command.Cli, sup *supervised, follow bool, format string) error {
	out := dockerCli.Out()
	items, err := s.list(ctx, 0)
	if err != nil {
		if follow {
			return followEnd(ctx, sup, err)
		}
		return sup.wrap(err)
	}
	if err := s.write(out, format, append(s.pre, items...)); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	var last uint64
	if len(items) > 0 {
		last = s.seq(items[len(items)-1])
	}
	return followEnd(ctx, sup, s.follow(ctx, last, s.printer(out, format)))
}

// write prints items in format, with a table's header.
func (s stream[T]) write(out io.Writer, format string, items []T) error {
	if isDefaultTable(format) {
		if err := writeRow(out, s.widths, s.header...); err != nil {
			return err
		}
		for _, it := range items {
			if err := writeRow(out, s.widths, s.row(it)...); err != nil {
				return err
			}
		}
		return nil
	}
	ctxs := make([]formatter.SubContext, len(items))
	for i, it := range items {
		ctxs[i] = s.context(it)
	}
	return writeList(out, formatter.Format(format), s.fields, ctxs)
}

// printer prints followed items one at a time, without a header. A table
// template's rows are not aligned with the listed ones: as with `docker
// events --format`, each item is rendered alone, when it comes.
func (s stream[T]) printer(out io.Writer, format string) func(T) error {
	if isDefaultTable(format) {
		return func(it T) error { return writeRow(out, s.widths, s.row(it)...) }
	}
	if after, ok := strings.CutPrefix(format, formatter.TableFormatKey); ok {
		format = after
	}
	return func(it T) error {
		return writeList(out, formatter.Format(format), s.fields, []formatter.SubContext{s.context(it)})
	}
}

func isDefaultTable(format string) bool {
	return format == "" || format == formatter.TableFormatKey
}

// writeRow prints a row of fixed-width columns (the last one free), the
// same whether listed at once or followed line by line.
func writeRow(w io.Writer, widths []int, cols ...string) error {
	var b strings.Builder
	for i, c := range cols {
		if i < len(widths) {
			fmt.Fprintf(&b, "%-*s ", widths[i], c)
		} else {
			b.WriteString(c)
		}
	}
	_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	return err
}

// localTime formats an event's time for a table.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
