package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/gitstage"
	"github.com/docker-bottle/docker-bottle/plan"
)

// bottleFilter turns `--filter` terms (docker's syntax: the values of one
// term are alternatives, terms all apply) into a test of a bottle:
//
//	repo=PATH  the bottle works on the repository PATH is in
//	name=TEXT  the bottle's name contains TEXT (as docker ps does)
func bottleFilter(ctx context.Context, f client.Filters) (func(plan.Plan) bool, error) {
	for term := range f {
		if term != "repo" && term != "name" {
			return nil, fmt.Errorf("invalid filter %q: bottles filter on repo=PATH and name=TEXT", term)
		}
	}
	var repos []string
	for v := range f["repo"] {
		repos = append(repos, repoOf(ctx, v))
	}
	return func(p plan.Plan) bool {
		if len(repos) > 0 {
			mine := repoOf(ctx, p.Workspace)
			if !slices.Contains(repos, mine) {
				return false
			}
		}
		if names := f["name"]; len(names) > 0 {
			ok := false
			for n := range names {
				ok = ok || strings.Contains(p.Slug, n)
			}
			return ok
		}
		return true
	}, nil
}

// repoOf is the top of the work tree path is in, or path itself (made
// absolute) when git cannot tell, as for a repository since removed.
func repoOf(ctx context.Context, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if top, err := gitstage.TopLevel(ctx, abs); err == nil {
		return top
	}
	return abs
}
