package gate

import (
	"path"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
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

// matchGlob matches a ref name exactly (refs are not file names).
func matchGlob(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"), globSeg)
}

func globSeg(pat, name string) bool {
	ok, _ := path.Match(pat, name)
	return ok
}

func matchSegs(pat, name []string, seg func(pat, name string) bool) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:], seg) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 || !seg(pat[0], name[0]) {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// couldMatchBelow reports whether pattern could match dir itself or a path
// inside dir, so that tree walks can skip folders nothing protects.
func couldMatchBelow(pat, dir []string, seg func(pat, name string) bool) bool {
	for _, d := range dir {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if !seg(pat[0], d) {
			return false
		}
		pat = pat[1:]
	}
	return true
}

// pathMatcher matches repository paths as the file systems of checkouts
// compare them, so that no spelling of a protected path slips through: a
// checkout on macOS or Windows writes ".GitHub/Workflows", ".huſky" (long
// s), ".gıthooks" (dotless i), ".hus\u200cky" (an ignored joiner),
// ".husky." and "HUSKY~1" (an 8.3 short name) where ".husky" would be.
// Patterns and paths are compared component by component through
// foldName; a path component in the 8.3 form is taken to be any name it
// could stand for.
type pathMatcher [][]string

func newPathMatcher(globs []string) pathMatcher {
	m := make(pathMatcher, len(globs))
	for i, g := range globs {
		segs := strings.Split(g, "/")
		for j, s := range segs {
			if s != "**" {
				segs[j] = foldName(s)
			}
		}
		m[i] = segs
	}
	return m
}

func (m pathMatcher) match(p string) bool {
	name := foldPath(p)
	for _, g := range m {
		if matchSegs(g, name, foldedSeg) {
			return true
		}
		if n := len(g); n > 1 && g[n-1] == "**" && matchSegs(g[:n-1], name, foldedSeg) {
			return true
		}
	}
	return false
}

func (m pathMatcher) below(dir string) bool {
	d := foldPath(dir)
	for _, g := range m {
		if couldMatchBelow(g, d, foldedSeg) {
			return true
		}
	}
	return false
}

// tailsBelow returns, for each pattern that could match inside dir, what
// of it is left to match below dir (folded components).
func (m pathMatcher) tailsBelow(dir string) [][]string {
	d := foldPath(dir)
	var out [][]string
	for _, g := range m {
		pat := g
		for _, c := range d {
			if len(pat) == 0 {
				break
			}
			if pat[0] == "**" {
				break // "**" takes the rest of dir and stays
			}
			if !foldedSeg(pat[0], c) {
				pat = nil
				break
			}
			pat = pat[1:]
		}
		if len(pat) > 0 {
			out = append(out, pat)
		}
	}
	return out
}

// foldedSeg matches a folded pattern component against a folded path
// component.
func foldedSeg(pat, name string) bool {
	return globSeg(pat, name) || shortNameOf(name, pat)
}

// foldPath splits a repository path into folded components. Windows also
// takes a backslash for a separator and drops what is left empty or only
// dots once trailing dots and spaces are gone; ".." climbs.
func foldPath(p string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		switch f := foldName(c); {
		case f == "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case strings.Trim(f, ".") == "":
		default:
			out = append(out, f)
		}
	}
	return out
}

// fullFold spells out the full case foldings that NFKC and simple folding
// leave: "ß" folds to "ss" (the ligatures NFKC already splits).
var fullFold = strings.NewReplacer("ß", "ss", "ẞ", "ss")

// foldName is the key under which the file systems of Linux, macOS (HFS+,
// APFS) and Windows (NTFS) checkouts would take two names for the same
// file: without an NTFS stream suffix (":$DATA"), without the code points
// HFS+ and Unicode ignore (joiners, direction marks, byte order mark),
// compatibility-normalised (NFKC, which also unifies NFC and NFD),
// case-folded with every rune replaced by one representative of the runes
// upper- and lower-casing and simple folding join ("ſ" is "s", and NTFS's
// "ı" upper-cases to "I" as "i" does; "ß" is "ss" as in full folding), and
// without the trailing dots and spaces Windows drops. Names that only this
// folding makes equal are rare in real trees, and treating them as the same
// is what protects.
func foldName(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.Map(func(r rune) rune {
		if ignorable(r) {
			return -1
		}
		return r
	}, s)
	s = fullFold.Replace(norm.NFKC.String(s))
	s = norm.NFC.String(strings.Map(caseClass, s))
	if strings.Trim(s, ".") == "" {
		return s // "." and "..": foldPath reads them as Windows does
	}
	return strings.TrimRight(s, ". ")
}

// ignorable reports a default-ignorable code point (format characters such
// as U+200C and U+FEFF, variation selectors, fillers): HFS+ ignores some in
// names, and none belongs in a file name.
func ignorable(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r)
}

// caseClass maps r to the least rune among those its upper and lower case
// and their simple case folding orbits hold: the same rune for every case
// variant that any of the three file systems folds together.
func caseClass(r rune) rune {
	least := r
	for _, x := range [...]rune{r, unicode.ToUpper(r), unicode.ToLower(r)} {
		f := x
		for {
			if f < least {
				least = f
			}
			if f = unicode.SimpleFold(f); f == x {
				break
			}
		}
	}
	return least
}

// shortForm is an NTFS 8.3 short name, folded (upper case): up to six
// characters, "~" and a number, and up to three of extension.
var shortForm = regexp.MustCompile(`^([^~.]{1,6})~([1-9][0-9]{0,5})(\.[^.]{1,3})?$`)

// shortNameOf reports whether the folded path component name is an 8.3
// short name that Windows could have given a file whose long name the
// folded pattern component pat matches.
func shortNameOf(name, pat string) bool {
	m := shortForm.FindStringSubmatch(name)
	if m == nil || len(m[1])+1+len(m[2]) > 8 {
		return false
	}
	// Windows makes the short name from the long one without leading
	// dots, spaces and inner dots (the last dot starts the extension),
	// with characters 8.3 names lack as "_": the first characters and
	// "~N", or, past a few collisions, two characters and a hash.
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r == '.' || r == ' ':
				return -1
			case strings.ContainsRune("+,;=[]", r):
				return '_'
			}
			return r
		}, s)
	}
	short, shortExt := m[1], strings.TrimPrefix(m[3], ".")
	if i := strings.IndexAny(pat, `*?[\`); i >= 0 {
		// Only the literal start of a wildcard pattern is known: the
		// short name must agree with it as far as both go.
		lit := clean(strings.TrimLeft(pat[:i], "."))
		agree := func(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }
		return agree(short, lit) || hashedShort(short) && agree(short[:2], lit)
	}
	long := strings.TrimLeft(pat, ".")
	base, ext := long, ""
	if i := strings.LastIndexByte(long, '.'); i >= 0 {
		base, ext = long[:i], long[i+1:]
	}
	base, ext = clean(base), clean(ext)
	hashed := hashedShort(short) && strings.HasPrefix(base, short[:2])
	if !strings.HasPrefix(base, short) && !hashed {
		return false
	}
	return shortExt == "" || strings.HasPrefix(ext, shortExt)
}

// hashedShort reports the base of a short name Windows makes past a few
// collisions: two characters of the long name and four hex digits.
func hashedShort(short string) bool { return len(short) == 6 && isHex(short[2:]) }

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789ABCDEFabcdef", r) {
			return false
		}
	}
	return true
}
