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

// TestPathMatcherSpellings is the review's list of spellings (M1, attack 4)
// and more: each lands on a protected path in a checkout on macOS or
// Windows, so each must match.
func TestPathMatcherSpellings(t *testing.T) {
	m := newPathMatcher([]string{".husky/**", ".githooks/**", ".github/**", ".gitmodules", "Jenkinsfile",
		"**/bottle.yaml", "café/**", "lint-staged.config.*"})
	for _, p := range []string{
		".huſky/pre-commit",            // U+017F long s: Unicode folding and NTFS
		".githookſ/x",                  // the same at the end of a name
		".gıthooks/x",                  // U+0131 dotless i: NTFS upper-cases it to I
		".hus\u200cky/x",               // HFS+ ignores U+200C
		".\u200dhusky\ufeff/x",         // and U+200D, U+FEFF
		".hus\u00adky/x",               // soft hyphen, default-ignorable
		"HUSKY~1/pre-commit",           // an NTFS 8.3 short name
		"GITHUB~2/workflows/x.yml",     // another one
		"GI7EBA~1",                     // the hashed short name of .gitmodules
		"JENKIN~1",                     // Jenkinsfile's
		"src/BOTTLE~1.YAM",             // bottle.yaml's, below any folder
		"LINT-S~1.JS",                  // a short name for a pattern with a wildcard
		".husky./x",                    // Windows drops trailing dots
		".husky /x",                    // and spaces
		".husky::$INDEX_ALLOCATION/x",  // an NTFS stream of the folder
		".gitmodules::$DATA",           // of the file
		".husky\\pre-commit",           // Windows reads a backslash as a separator
		"x\\..\\.husky\\pre-commit",    // and climbs with ..
		".github/workflowſ/x.yml",      // below a protected folder
		".github/wor\u212aflows/x.yml", // U+212A Kelvin sign
		"．husky/x",                     // U+FF0E fullwidth full stop (NFKC)
		".HUSKY/x", ".Husky/X",         // plain case
		"cafe\u0301/x",         // NFD for an NFC pattern
		"CAFÉ/x",               // and upper case
		".GITMODULES.",         // both
		"lint-staged.config.ſ", // a wildcard pattern's literal part folds too
	} {
		if !m.match(p) {
			t.Errorf("match(%q) = false: it lands on a protected path", p)
		}
	}
	for _, p := range []string{"src/main.go", ".huskyx/x", "husky/pre-commit", "src/HUSKY~1/x", "docs/A~1.MD",
		"JENKINS~1X", "docs/XY~1", "LINT-X~1.JS", ".githooksx", "cafe/x", "lint-staged.json", "bottle.yaml.txt"} {
		if m.match(p) {
			t.Errorf("match(%q) = true", p)
		}
	}
	for _, d := range []string{".huſky", "HUSKY~1", ".github.", "GITHUB~1", "x\\..\\.githooks"} {
		if !m.below(d) {
			t.Errorf("below(%q) = false", d)
		}
	}
	// The patterns fold as the paths do.
	if !newPathMatcher([]string{"CAFE\u0301/**"}).match("café/x") {
		t.Error("an NFD pattern does not match an NFC path")
	}
	for _, p := range []string{"straße/x", "STRAẞE/x", "Strasse/x"} {
		if !newPathMatcher([]string{"strasse/**"}).match(p) {
			t.Errorf("%q does not match strasse/** (full case folding)", p)
		}
	}
}
