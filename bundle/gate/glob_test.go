package gate

import "testing"

func TestMatchGlob(t *testing.T) {
	cases := []struct {
		pat, name string
		ok        bool
	}{
		{"refs/heads/bottle/b1/*", "refs/heads/bottle/b1/fix", true},
		{"refs/heads/bottle/b1/*", "refs/heads/bottle/b1/fix/deep", false},
		{"refs/heads/bottle/b1/*", "refs/heads/bottle/b10/fix", false},
		{"refs/heads/bottle/b1/**", "refs/heads/bottle/b1/fix/deep", true},
		{"refs/heads/**", "refs/heads/main", true},
		{"refs/heads/*", "refs/tags/v1", false},
		{".github/workflows/**", ".github/workflows/ci.yml", true},
		{".github/workflows/**", ".github/workflowsx/ci.yml", false},
		{"**/.husky/**", "web/.husky/pre-commit", true},
		{"*.yml", "a/b.yml", false},
	}
	for _, c := range cases {
		if got := matchGlob(c.pat, c.name); got != c.ok {
			t.Errorf("matchGlob(%q, %q) = %v", c.pat, c.name, got)
		}
	}
}

func TestPathMatcher(t *testing.T) {
	m := newPathMatcher([]string{".github/workflows/**", ".husky/**"})
	for p, want := range map[string]bool{
		".github/workflows/ci.yml": true,
		".GitHub/Workflows/x.yml":  true,
		".github/workflows":        true, // replacing the folder itself
		".github/dependabot.yml":   false,
		".husky":                   true,
		"src/.husky/x":             false,
	} {
		if got := m.match(p); got != want {
			t.Errorf("match(%q) = %v", p, got)
		}
	}
	for d, want := range map[string]bool{".github": true, ".github/workflows": true, "src": false, ".GITHUB": true} {
		if got := m.below(d); got != want {
			t.Errorf("below(%q) = %v", d, got)
		}
	}
}

func TestValidRefName(t *testing.T) {
	for name, want := range map[string]bool{
		"refs/heads/bottle/b1/fix": true,
		"refs/heads/a..b":          false,
		"refs/heads/x.lock":        false,
		"refs/heads/.hidden":       false,
		"refs/heads/a b":           false,
		"refs/heads/a@{1}":         false,
		"HEAD":                     false,
		"refs/heads/":              false,
		"refs/heads/a//b":          false,
	} {
		if got := validRefName(name); got != want {
			t.Errorf("validRefName(%q) = %v", name, got)
		}
	}
}
