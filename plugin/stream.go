package plugin

import (
	"context"
	"io"

	"github.com/docker/cli/cli/command"
)

// stream is one of the supervisor's streams (events, audit) as the
// commands show it: a list of what is kept, then with -f what follows.
type stream[T any] struct {
	// pre are shown first, before what the supervisor keeps.
	pre    []T
	list   func(ctx context.Context, after uint64) ([]T, error)
	follow func(ctx context.Context, after uint64, fn func(T) error) error
	seq    func(T) uint64
	header []string
	widths []int
	print  func(out io.Writer, format string) func(T) error
}

// show prints what is kept first, then (with follow) what comes after it;
// the table's header is printed once the supervisor has answered.
func (s stream[T]) show(ctx context.Context, dockerCli command.Cli, sup *supervised, follow bool, format string) error {
	out := dockerCli.Out()
	emit := s.print(out, format)
	ctx, stop := interruptible(ctx)
	defer stop()
	items, err := s.list(ctx, 0)
	if err != nil {
		if follow {
			return followEnd(ctx, sup, err)
		}
		return interrupted(ctx, sup.wrap(err))
	}
	if format == "table" {
		if err := writeRow(out, s.widths, s.header...); err != nil {
			return err
		}
	}
	for _, it := range s.pre {
		if err := emit(it); err != nil {
			return err
		}
	}
	var last uint64
	for _, it := range items {
		if err := emit(it); err != nil {
			return err
		}
		last = s.seq(it)
	}
	if follow {
		return followEnd(ctx, sup, s.follow(ctx, last, emit))
	}
	return nil
}
