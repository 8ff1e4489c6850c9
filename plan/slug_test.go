package plan

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestSlugFromDir(t *testing.T) {
	cases := map[string]string{
		"/home/u/My Project":              "my-project",
		"/src/api_server.v2":              "api-server-v2",
		"/x/--weird--":                    "weird",
		"/":                               "bottle",
		"/x/ÄÖÜ":                          "bottle",
		"/x/" + strings.Repeat("ab-", 30): strings.TrimRight(strings.Repeat("ab-", 30)[:40], "-"),
	}
	for in, want := range cases {
		if got := SlugFromDir(in); got != want {
			t.Errorf("SlugFromDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChooseSlug(t *testing.T) {
	taken := map[string]bool{"repo": true, "repo-2": true, "demo": true}
	isTaken := func(s string) bool { return taken[s] }

	if s, err := ChooseSlug("", "", "/src/repo", isTaken); err != nil || s != "repo-3" {
		t.Errorf("derived: %q %v", s, err)
	}
	if s, err := ChooseSlug("mine", "fromspec", "/src/repo", isTaken); err != nil || s != "mine" {
		t.Errorf("flag wins: %q %v", s, err)
	}
	if s, err := ChooseSlug("", "fromspec", "/src/repo", isTaken); err != nil || s != "fromspec" {
		t.Errorf("spec name: %q %v", s, err)
	}
	if _, err := ChooseSlug("demo", "", "/src/repo", isTaken); err == nil || !strings.Contains(err.Error(), "docker bottle rm demo") {
		t.Errorf("taken explicit name: %v", err)
	}
	if _, err := ChooseSlug("Bad_Name", "", "/src/repo", isTaken); err == nil {
		t.Error("invalid explicit name accepted")
	}
	long := strings.Repeat("a", 40)
	taken[long] = true
	if s, err := ChooseSlug("", "", "/src/"+long, isTaken); err != nil || s != strings.Repeat("a", 38)+"-2" {
		t.Errorf("long derived: %q %v", s, err)
	}
}

// TestClaimSlug: a default name another run claimed first moves on to the
// next; an explicit one is refused; other errors are the caller's.
func TestClaimSlug(t *testing.T) {
	claimed := map[string]bool{}
	taken := func(s string) bool { return claimed[s] }
	// Another run claims "repo" and "mine" between taken and claim.
	raced := map[string]bool{"repo": true, "mine": true}
	claim := func(s string) error {
		if raced[s] {
			raced[s], claimed[s] = false, true
			return fs.ErrExist
		}
		claimed[s] = true
		return nil
	}
	got, err := ClaimSlug("", "", "/src/repo", taken, claim)
	if err != nil || got != "repo-2" {
		t.Fatalf("default name after a race: %q, %v", got, err)
	}
	if _, err := ClaimSlug("mine", "", "/src/repo", taken, claim); err == nil || !strings.Contains(err.Error(), "created meanwhile") {
		t.Fatalf("explicit name after a race: %v", err)
	}
	if _, err := ClaimSlug("", "", "/src/repo", func(string) bool { return false }, func(string) error { return fs.ErrPermission }); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("a failing claim: %v", err)
	}
	if got, err := ClaimSlug("", "", "/src/repo", taken, nil); err != nil || got != "repo-3" {
		t.Fatalf("choosing only: %q, %v", got, err)
	}
}
