package gate

import (
	"strings"
	"testing"
)

func TestCheckEntryName(t *testing.T) {
	for _, n := range []string{"", ".", "..", "a/b", "a\x00b", ".git", ".GIT", ".Git", ".git\u200c", ".g\u200cit",
		".git\ufeff", ".git.", ".git ", ".git. . ", "git~1", "GIT~1", "GIT~2", ".git::$INDEX_ALLOCATION",
		"foo\\.git", ".git\\config", "...", ". ", ".. ", "\u200c", "a\\..", "ＧＩＴ~1", "．git"} {
		if checkEntryName(n) == nil {
			t.Errorf("checkEntryName(%q) accepted it", n)
		}
	}
	for _, n := range []string{".github", ".gitignore", ".gitmodules", "git", ".git-blame-ignore-revs", "x.git",
		"gitx~1", "..a", "a..", "README", "café", "GIT~1X"} {
		if err := checkEntryName(n); err != nil {
			t.Errorf("checkEntryName(%q): %v", n, err)
		}
	}
}

func TestCheckGitmodules(t *testing.T) {
	good := []string{
		"",
		"[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n",
		"\xef\xbb\xbf# comment\r\n[submodule \"a b\"] ; the name has a space\r\n\tpath = \"a b\"\r\n\turl = ../a.git # relative\r\n",
		"[submodule \"x\"]\n\turl = git@example.com:x/y.git\n\tbranch\n\tupdate = rebase\n",
		"[submodule \"x\"]\n\turl = https://example.com/\\\n  x.git\n",
		"[core]\n\turl = -whatever\n",                // not a submodule's
		"[submodule]\n\turl = -whatever\n",           // no subsection: git ignores it
		"[submodule \"es\\\"c\"]\n\tpath = p\n",      // an escaped quote in the name
		"[submodule.old]\n\tpath = old\n",            // the old header form
		"[submodule \"x\"]\n\turl = ./sub/..x.git\n", // dots inside a name
	}
	for _, g := range good {
		if err := checkGitmodules([]byte(g)); err != nil {
			t.Errorf("%q refused: %v", g, err)
		}
	}
	bad := map[string]string{
		"[submodule \"../../hooks\"]\n\tpath = x\n":                            "climbs",
		"[submodule \"a/../../b\"]\n\tpath = x\n":                              "climbs",
		"[submodule \"..\\\\x\"]\n\tpath = x\n":                                "climbs",
		"[submodule \"x\"]\n\turl = --upload-pack=touch${IFS}x\n":              "starts with -",
		"[submodule \"x\"]\n\turl = \"-oProxyCommand=sh\"\n":                   "starts with -",
		"[submodule \"x\"]\n\tpath = -x\n":                                     "starts with -",
		"[submodule \"x\"]\n\tupdate = !sh -c evil\n":                          "runs a command",
		"[submodule \"x\"]\n\turl = https://a%0ahost=evil/x\n":                 "control character",
		"[submodule \"x\"]\n\turl = \"https://a\\nhost=evil\"\n":               "control character",
		"[submodule \"x\"]\n\turl = ../../-x\n":                                "starts with -",
		"[submodule \"x\"]\n\turl = ../../evil:x\n":                            "scheme or host",
		"[submodule \"\"]\n\tpath = x\n":                                       "empty name",
		"url = x\n":                                                            "before any [section]",
		"[submodule \"x\"\n":                                                   "not closed",
		"[submodule \"x\"]\n\turl = \"open\n":                                  "quote is not closed",
		"[submodule \"x\"]\n\turl = a\\qb\n":                                   "unknown escape",
		"[submodule \"x\"]\n\turl = a\x00b\n":                                  "NUL",
		"[submodule \"x\"]\n\tpath = x\n" + strings.Repeat("#", maxGitmodules): "larger than",
	}
	for in, want := range bad {
		err := checkGitmodules([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60q: %v, want an error with %q", in, err, want)
		}
	}
}

func FuzzGitmodules(f *testing.F) {
	f.Add([]byte("[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n"))
	f.Add([]byte("[submodule \"a\"] ; c\r\n\turl = \"x\\\"y\" # z\\\n w\n[core]\n\tbare\n"))
	f.Add([]byte("\xef\xbb\xbf[submodule.old]\n url = ../-x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var calls int
		err := parseGitConfig(data, func(v configVar) error {
			calls++
			if v.section != strings.ToLower(v.section) || v.key != strings.ToLower(v.key) || v.key == "" || v.section == "" {
				t.Fatalf("section %q key %q not lower-cased or empty", v.section, v.key)
			}
			if !v.hasValue && v.value != "" || !v.hasSub && v.sub != "" {
				t.Fatalf("%+v", v)
			}
			return nil
		})
		if err == nil && calls > len(data) {
			t.Fatalf("%d variables from %d bytes", calls, len(data))
		}
		checkGitmodules(data)
	})
}
