package gate

import (
	"path"
	"strings"
)

// Globs here are slash-separated: "*", "?" and "[...]" match within one
// component (path.Match), and a component "**" matches any number of
// components, none included. A pattern ending in "/**" also matches the
// directory itself, so that replacing a protected folder by a file or a
// symlink counts as touching it.

func checkGlob(p string) error {
	for _, seg := range strings.Split(p, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return err
		}
	}
	return nil
}

func matchGlob(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// couldMatchBelow reports whether pattern could match dir itself or a path
// inside dir, so that tree walks can skip folders nothing protects.
func couldMatchBelow(pattern, dir string) bool {
	pat := strings.Split(pattern, "/")
	for _, seg := range strings.Split(dir, "/") {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if ok, _ := path.Match(pat[0], seg); !ok {
			return false
		}
		pat = pat[1:]
	}
	return true
}

// pathMatcher matches repository paths case-insensitively: a checkout on a
// case-insensitive file system (macOS, Windows) puts ".GitHub/Workflows"
// where ".github/workflows" would be.
type pathMatcher []string

func newPathMatcher(globs []string) pathMatcher {
	m := make(pathMatcher, len(globs))
	for i, g := range globs {
		m[i] = strings.ToLower(g)
	}
	return m
}

func (m pathMatcher) match(p string) bool {
	p = strings.ToLower(p)
	for _, g := range m {
		if matchGlob(g, p) || (strings.HasSuffix(g, "/**") && matchGlob(strings.TrimSuffix(g, "/**"), p)) {
			return true
		}
	}
	return false
}

func (m pathMatcher) below(dir string) bool {
	dir = strings.ToLower(dir)
	for _, g := range m {
		if couldMatchBelow(g, dir) {
			return true
		}
	}
	return false
}
