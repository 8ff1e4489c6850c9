package plan

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/docker-bottle/docker-bottle/spec"
)

// SlugFromDir makes a bottle name from a directory name: lower case,
// letters and digits, runs of anything else become one dash, at most
// spec.MaxNameLen characters. It returns "bottle" when nothing is left.
func SlugFromDir(dir string) string {
	base := strings.ToLower(filepath.Base(filepath.Clean(dir)))
	var b strings.Builder
	dash := false
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	s := b.String()
	if len(s) > spec.MaxNameLen {
		s = strings.TrimRight(s[:spec.MaxNameLen], "-")
	}
	if s == "" {
		return "bottle"
	}
	return s
}

// ChooseSlug picks the bottle's name: the flag, else the spec's name (both
// used as given, and refused when taken), else one derived from the
// directory, with -2, -3... appended while taken.
func ChooseSlug(flag, specName, dir string, taken func(string) bool) (string, error) {
	for _, explicit := range []string{flag, specName} {
		if explicit == "" {
			continue
		}
		if err := spec.ValidateName(explicit); err != nil {
			return "", err
		}
		if taken(explicit) {
			return "", fmt.Errorf("a bottle named %q already exists: remove it with `docker bottle rm %s` or choose another --name",
				explicit, explicit)
		}
		return explicit, nil
	}
	base := SlugFromDir(dir)
	for i := 1; i < 1000; i++ {
		s := base
		if i > 1 {
			suffix := fmt.Sprintf("-%d", i)
			if len(s)+len(suffix) > spec.MaxNameLen {
				s = strings.TrimRight(s[:spec.MaxNameLen-len(suffix)], "-")
			}
			s += suffix
		}
		if !taken(s) {
			return s, nil
		}
	}
	return "", fmt.Errorf("too many bottles named after %q: remove some with `docker bottle rm` or use --name", base)
}
