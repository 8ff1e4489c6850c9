package gate

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxGitmodules bounds a .gitmodules file the gate reads; git's fsck also
// refuses to check one that does not fit in memory.
const maxGitmodules = 1 << 20

// checkGitmodules applies git fsck's checks of a .gitmodules file, whose
// entries `git submodule` and recursive clones and checkouts on the host
// act on: a submodule name must not climb out of .git/modules with "..",
// a url or path must not start with "-" (it would reach git or ssh as an
// option), a url must not hide a newline or other control character
// (credential helpers read line-based input), and "update" must not run a
// command ("!..."). A file git could not read as a config is refused too.
func checkGitmodules(data []byte) error {
	if len(data) > maxGitmodules {
		return fmt.Errorf("it is larger than %d bytes", maxGitmodules)
	}
	return parseGitConfig(data, func(v configVar) error {
		if v.section != "submodule" || !v.hasSub {
			return nil
		}
		sub, value := v.sub, v.value
		if err := checkSubmoduleName(sub); err != nil {
			return err
		}
		if !v.hasValue {
			return nil
		}
		switch v.key {
		case "url":
			if err := checkSubmoduleURL(value); err != nil {
				return fmt.Errorf("submodule %q: url %q %w", sub, value, err)
			}
		case "path":
			if strings.HasPrefix(value, "-") {
				return fmt.Errorf("submodule %q: path %q starts with -, which git would read as an option", sub, value)
			}
		case "update":
			if strings.HasPrefix(value, "!") {
				return fmt.Errorf("submodule %q: update %q runs a command", sub, value)
			}
		}
		return nil
	})
}

// checkSubmoduleName refuses names that are empty or have a ".." component
// (either separator counts: Windows reads a backslash as one).
func checkSubmoduleName(name string) error {
	if name == "" {
		return errors.New("a submodule has an empty name")
	}
	for _, c := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if c == ".." {
			return fmt.Errorf("submodule name %q climbs (a \"..\" component)", name)
		}
	}
	return nil
}

// checkSubmoduleURL refuses what git's check_submodule_url refuses, and
// more: any control character once percent-decoded.
func checkSubmoduleURL(u string) error {
	if strings.HasPrefix(u, "-") {
		return errors.New("starts with -, which git or ssh would read as an option")
	}
	decoded, err := url.PathUnescape(u)
	if err != nil {
		decoded = u
	}
	for _, s := range []string{u, decoded} {
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return errors.New("has a control character (a newline, once decoded?)")
			}
		}
	}
	// A relative url ("./x", "../../x") is resolved against the
	// superproject's remote: what follows the dots must not be read as an
	// option or as another scheme or host ("../../-x", "../../evil:x").
	rest, relative := decoded, false
	for {
		switch {
		case strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, ".\\"):
			rest, relative = rest[2:], true
			continue
		case strings.HasPrefix(rest, "../") || strings.HasPrefix(rest, "..\\"):
			rest, relative = rest[3:], true
			continue
		}
		break
	}
	if relative {
		if strings.HasPrefix(rest, "-") {
			return errors.New("is relative and then starts with -")
		}
		if i := strings.IndexAny(rest, ":/\\"); i >= 0 && rest[i] == ':' {
			return errors.New("is relative and then names a scheme or host")
		}
	}
	return nil
}

// configVar is one variable of a git config file.
type configVar struct {
	section string // lower-cased
	sub     string // as written
	hasSub  bool   // false for "[section]", true for `[section ""]` too
	key     string // lower-cased
	value   string // quotes and escapes undone
	// hasValue is false for a bare "key" (git reads it as true).
	hasValue bool
}

// parseGitConfig reads data in git's config syntax and calls fn for each
// variable. Anything git's own parser would refuse is an error.
func parseGitConfig(data []byte, fn func(configVar) error) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(data, 0) >= 0 {
		return errors.New("it has a NUL byte")
	}
	p := &configParser{data: data, line: 1}
	err := p.parse(fn)
	if err != nil {
		return fmt.Errorf("line %d: %w", p.line, err)
	}
	return nil
}

type configParser struct {
	data []byte
	pos  int
	line int
}

func (p *configParser) peek() (byte, bool) {
	if p.pos >= len(p.data) {
		return 0, false
	}
	c := p.data[p.pos]
	if c == '\r' && p.pos+1 < len(p.data) && p.data[p.pos+1] == '\n' {
		p.pos++ // CRLF reads as LF
		return '\n', true
	}
	return c, true
}

func (p *configParser) next() (byte, bool) {
	c, ok := p.peek()
	if ok {
		p.pos++
		if c == '\n' {
			p.line++
		}
	}
	return c, ok
}

func (p *configParser) skipComment() {
	for {
		c, ok := p.peek()
		if !ok || c == '\n' {
			return
		}
		p.pos++
	}
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func (p *configParser) parse(fn func(configVar) error) error {
	var v configVar
	seen := false
	for {
		c, ok := p.peek()
		if !ok {
			return nil
		}
		switch {
		case c == '\n' || c == ' ' || c == '\t' || c == '\r':
			p.next()
		case c == '#' || c == ';':
			p.skipComment()
		case c == '[':
			p.next()
			var err error
			if v.section, v.sub, v.hasSub, err = p.header(); err != nil {
				return err
			}
			seen = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			if !seen {
				return errors.New("a variable comes before any [section]")
			}
			var err error
			if v.key, v.value, v.hasValue, err = p.variable(); err != nil {
				return err
			}
			if err := fn(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q", c)
		}
	}
}

// header reads what follows "[": a section name, and a quoted subsection
// or the old "[section.subsection]" form.
func (p *configParser) header() (section, sub string, hasSub bool, err error) {
	var name strings.Builder
	for {
		c, ok := p.next()
		switch {
		case !ok || c == '\n':
			return "", "", false, errors.New("a section header is not closed with ]")
		case c == ']':
			s := strings.ToLower(name.String())
			if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
				return "", "", false, errors.New("a section header has a bad name")
			}
			if i := strings.IndexByte(s, '.'); i >= 0 {
				return s[:i], s[i+1:], true, nil
			}
			return s, "", false, nil
		case c == ' ' || c == '\t':
			section = strings.ToLower(name.String())
			if section == "" || strings.Contains(section, ".") {
				return "", "", false, errors.New("a section header has a bad name")
			}
			sub, err := p.subsection()
			return section, sub, true, err
		case isKeyByte(c) || c == '.':
			name.WriteByte(c)
		default:
			return "", "", false, fmt.Errorf("a section name has %q", c)
		}
	}
}

func (p *configParser) subsection() (string, error) {
	for {
		c, ok := p.next()
		if !ok || c == '\n' {
			return "", errors.New("a section header is not closed")
		}
		if c == '"' {
			break
		}
		if c != ' ' && c != '\t' {
			return "", errors.New("a subsection is not quoted")
		}
	}
	var b strings.Builder
	for {
		c, ok := p.next()
		switch {
		case !ok || c == '\n':
			return "", errors.New("a subsection's quote is not closed")
		case c == '\\':
			c, ok = p.next()
			if !ok || c == '\n' {
				return "", errors.New("a subsection ends in a backslash")
			}
			b.WriteByte(c)
		case c == '"':
			if c, ok := p.next(); !ok || c != ']' {
				return "", errors.New("a section header is not closed with ]")
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
}

// variable reads "key" (no value) or "key = value" up to the end of its
// (possibly continued) line.
func (p *configParser) variable() (key, value string, hasValue bool, err error) {
	var k strings.Builder
	for {
		c, ok := p.peek()
		if !ok || !isKeyByte(c) {
			break
		}
		k.WriteByte(c)
		p.pos++
	}
	key = strings.ToLower(k.String())
	for {
		c, ok := p.peek()
		switch {
		case !ok || c == '\n':
			return key, "", false, nil
		case c == '#' || c == ';':
			p.skipComment()
			return key, "", false, nil
		case c == ' ' || c == '\t':
			p.pos++
			continue
		case c == '=':
			p.pos++
			value, err = p.value()
			return key, value, true, err
		default:
			return "", "", false, fmt.Errorf("variable %q is followed by %q", key, c)
		}
	}
}

func (p *configParser) value() (string, error) {
	var b strings.Builder
	var space strings.Builder // whitespace held back until more value follows
	quoted, started := false, false
	for {
		c, ok := p.next()
		if !ok || c == '\n' && !quoted {
			if quoted {
				return "", errors.New("a value's quote is not closed")
			}
			return b.String(), nil
		}
		switch {
		case c == '\n':
			return "", errors.New("a value's quote is not closed")
		case !quoted && (c == ' ' || c == '\t'):
			if started {
				space.WriteByte(c)
			}
			continue
		case !quoted && (c == '#' || c == ';'):
			p.skipComment()
			continue
		}
		b.WriteString(space.String())
		space.Reset()
		started = true
		switch c {
		case '"':
			quoted = !quoted
		case '\\':
			e, ok := p.next()
			switch {
			case !ok:
				return "", errors.New("a value ends in a backslash")
			case e == '\n':
				// a continued line
			case e == 'n':
				b.WriteByte('\n')
			case e == 't':
				b.WriteByte('\t')
			case e == 'b':
				b.WriteByte('\b')
			case e == '"' || e == '\\':
				b.WriteByte(e)
			default:
				return "", fmt.Errorf("a value has the unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
}
