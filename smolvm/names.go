package smolvm

import (
	"fmt"
	"strings"
)

// MaxNameLength is smolvm's cap on machine names.
const MaxNameLength = 128

// ValidateName applies smolvm's machine-name rules (src/data/mod.rs
// validate_vm_name at v1.9.3): 1 to 128 characters from [A-Za-z0-9_-], the
// first one a letter or digit, no trailing '-' and no "--". Checking here
// gives a clear error before smolvm is run.
func ValidateName(name string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, fmt.Sprintf(format, a...))
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return bad("%d characters, at most %d are allowed", len(name), MaxNameLength)
	case !isAlnum(name[0]):
		return bad("it must start with a letter or a digit")
	case strings.HasSuffix(name, "-"):
		return bad("it must not end with '-'")
	case strings.Contains(name, "--"):
		return bad("it must not contain \"--\"")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '-' && c != '_' {
			return bad("character %q is not allowed (use letters, digits, '-' and '_')", rune(c))
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
