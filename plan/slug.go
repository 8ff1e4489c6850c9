package plan

import (
	"errors"
	"fmt"
	"io/fs"
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

// maxSlugs bounds the numbered names tried for one directory.
const maxSlugs = 1000

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
	for i := 1; i < maxSlugs; i++ {
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

// ClaimSlug chooses the bottle's name as ChooseSlug does and claims it
// with claim, which fails with fs.ErrExist when another run claimed the
// name first. Then a name derived from the directory moves on to the next
// free one, so that runs started at the same moment in one repository all
// start; an explicit name is refused. A nil claim only chooses (dry run).
func ClaimSlug(flag, specName, dir string, taken func(string) bool, claim func(string) error) (string, error) {
	for attempt := 0; ; attempt++ {
		slug, err := ChooseSlug(flag, specName, dir, taken)
		if err != nil || claim == nil {
			return slug, err
		}
		err = claim(slug)
		if err == nil {
			return slug, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("claiming the name %s: %w", slug, err)
		}
		// taken sees the other run's claim from now on, so ChooseSlug
		// moves on; the bound only guards against a taken that does not.
		if flag != "" || specName != "" || attempt >= maxSlugs {
			return "", fmt.Errorf("a bottle named %q was created meanwhile: run again, or choose --name", slug)
		}
	}
}
