package plan

import (
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
