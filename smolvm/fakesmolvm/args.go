package main

import (
	"fmt"
	"os"
	"strings"
)

// A small clap look-alike: enough of clap's parsing rules and error texts
// for the commands docker bottle uses (smolvm-cli.md), so that a flag the
// real smolvm rejects with exit 2 is rejected here too.

type flagSpec struct {
	long  string
	short byte   // 0: none
	value string // value name; "" for a boolean flag
	multi bool
}

func (f flagSpec) display() string {
	s := "--" + f.long
	if f.value != "" {
		s += " <" + f.value + ">"
	}
	return s
}

type trailingMode int

const (
	noTrailing   trailingMode = iota
	lastTrailing              // only after `--` (clap `last = true`)
	varTrailing               // from the first positional on (clap `trailing_var_arg`)
)

type cmdSpec struct {
	path      string // "machine create"
	usage     string // after "Usage: smolvm "
	flags     []flagSpec
	trailing  trailingMode
	trailReq  bool        // the trailing command is required
	required  []string    // long names
	conflicts [][2]string // long names
}

type parsed struct {
	vals     map[string][]string
	order    []string // long names in the order first seen
	trailing []string
}

func (p *parsed) has(long string) bool { _, ok := p.vals[long]; return ok }

func (p *parsed) str(long string) string {
	if v := p.vals[long]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (p *parsed) list(long string) []string { return p.vals[long] }

// usageError prints a clap-style usage error and exits 2.
func usageError(spec *cmdSpec, format string, a ...any) {
	fmt.Fprintf(os.Stderr, "error: %s\n\nUsage: smolvm %s\n\nFor more information, try '--help'.\n", fmt.Sprintf(format, a...), spec.usage)
	os.Exit(2)
}

func (spec *cmdSpec) find(long string) *flagSpec {
	for i := range spec.flags {
		if spec.flags[i].long == long {
			return &spec.flags[i]
		}
	}
	return nil
}

func (spec *cmdSpec) findShort(c byte) *flagSpec {
	for i := range spec.flags {
		if spec.flags[i].short == c {
			return &spec.flags[i]
		}
	}
	return nil
}

// parse parses args after the subcommand path. -h/--help prints the usage
// and exits 0.
func (spec *cmdSpec) parse(args []string) *parsed {
	p := &parsed{vals: map[string][]string{}}
	set := func(f *flagSpec, v string) {
		if _, seen := p.vals[f.long]; seen && !f.multi && f.value != "" {
			usageError(spec, "the argument '%s' cannot be used multiple times", f.display())
		}
		if _, seen := p.vals[f.long]; !seen {
			p.order = append(p.order, f.long)
		}
		p.vals[f.long] = append(p.vals[f.long], v)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if spec.trailing == noTrailing && len(args) > i+1 {
				usageError(spec, "unexpected argument '%s' found", args[i+1])
			}
			p.trailing = append(p.trailing, args[i+1:]...)
			i = len(args)
		case a == "-h" || a == "--help":
			fmt.Printf("Usage: smolvm %s\n", spec.usage)
			os.Exit(0)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			f := spec.find(name)
			if f == nil {
				usageError(spec, "unexpected argument '--%s' found", name)
			}
			if f.value == "" {
				if hasVal {
					usageError(spec, "unexpected value '%s' for '--%s' found; no more were expected", val, name)
				}
				set(f, "true")
				continue
			}
			if !hasVal {
				// clap takes a following "-x" as a flag, not as the value.
				if i+1 >= len(args) || isFlagLike(args[i+1]) {
					usageError(spec, "a value is required for '%s' but none was supplied", f.display())
				}
				i++
				val = args[i]
			}
			set(f, val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				f := spec.findShort(a[j])
				if f == nil {
					usageError(spec, "unexpected argument '-%c' found", a[j])
				}
				if f.value == "" {
					set(f, "true")
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if val == "" {
					if i+1 >= len(args) || isFlagLike(args[i+1]) {
						usageError(spec, "a value is required for '%s' but none was supplied", f.display())
					}
					i++
					val = args[i]
				}
				set(f, val)
				break
			}
		default:
			if spec.trailing != varTrailing {
				usageError(spec, "unexpected argument '%s' found", a)
			}
			rest := args[i:]
			if len(rest) > 0 && rest[0] == "--" {
				rest = rest[1:]
			}
			p.trailing = append(p.trailing, rest...)
			i = len(args)
		}
	}
	for _, c := range spec.conflicts {
		if p.has(c[0]) && p.has(c[1]) {
			a, b := spec.find(c[0]), spec.find(c[1])
			if indexOf(p.order, c[1]) < indexOf(p.order, c[0]) {
				a, b = b, a
			}
			usageError(spec, "the argument '%s' cannot be used with '%s'", a.display(), b.display())
		}
	}
	var missing []string
	for _, r := range spec.required {
		if !p.has(r) {
			missing = append(missing, "  "+spec.find(r).display())
		}
	}
	if spec.trailReq && len(p.trailing) == 0 {
		missing = append(missing, "  <COMMAND>...")
	}
	if len(missing) > 0 {
		usageError(spec, "the following required arguments were not provided:\n%s", strings.Join(missing, "\n"))
	}
	return p
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func isFlagLike(a string) bool { return len(a) > 1 && a[0] == '-' }
