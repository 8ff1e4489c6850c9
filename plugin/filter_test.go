package plugin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cliopts "github.com/docker/cli/opts"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plan"
)

// TestBottleFilter: repo= matches the bottles of the repository a path is
// in (its top or a folder of it), values of one term are alternatives,
// terms all apply, and an unknown term is refused.
func TestBottleFilter(t *testing.T) {
	a, b := testenv.GitRepo(t), testenv.GitRepo(t)
	sub := filepath.Join(a, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	bottles := []plan.Plan{{Slug: "repo", Workspace: a}, {Slug: "repo-2", Workspace: a}, {Slug: "other", Workspace: b},
		{Slug: "gone", Workspace: "/nowhere/gone"}}
	match := func(terms ...string) string {
		t.Helper()
		f := cliopts.NewFilterOpt()
		for _, term := range terms {
			if err := f.Set(term); err != nil {
				t.Fatal(err)
			}
		}
		m, err := bottleFilter(context.Background(), f.Value())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range bottles {
			if m(p) {
				got = append(got, p.Slug)
			}
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		terms []string
		want  string
	}{
		{nil, "repo repo-2 other gone"},
		{[]string{"repo=" + a}, "repo repo-2"},
		{[]string{"repo=" + sub}, "repo repo-2"},
		{[]string{"repo=" + a, "repo=" + b}, "repo repo-2 other"},
		{[]string{"repo=" + a, "name=2"}, "repo-2"},
		{[]string{"repo=/nowhere/gone"}, "gone"},
		{[]string{"name=o"}, "repo repo-2 other gone"},
	} {
		if got := match(c.terms...); got != c.want {
			t.Errorf("--filter %v: %q, want %q", c.terms, got, c.want)
		}
	}
	f := cliopts.NewFilterOpt()
	_ = f.Set("label=x")
	if _, err := bottleFilter(context.Background(), f.Value()); err == nil || !strings.Contains(err.Error(), "repo=PATH") {
		t.Errorf("an unknown term: %v", err)
	}
}
