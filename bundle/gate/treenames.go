package gate

import (
	"fmt"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// Folded names of the files git gives a meaning in the tree.
var (
	foldedDotGit   = foldName(".git")
	foldedModules  = foldName(".gitmodules")
	dotfilesNoLink = []string{foldName(".gitmodules"), foldName(".gitattributes"), foldName(".gitignore"), foldName(".mailmap")}
)

// sameFile reports whether the entry name would be the file whose folded
// name is folded on some checkout: the same after foldName, or an 8.3
// short name for it.
func sameFile(name, folded string) bool {
	f := foldName(name)
	return f == folded || shortNameOf(f, folded)
}

// checkTreeNames refuses entries git itself would refuse to check out, or
// that its fsck refuses: empty, ".", "..", a "/" or NUL; ".git" however a
// macOS or Windows checkout spells it (".GIT", ".git\u200c", ".git.",
// "git~1", ".git::$INDEX_ALLOCATION"), also between backslashes; names
// that file systems read as empty or dots only; the same name twice; a
// symlink named .gitmodules, .gitattributes, .gitignore or .mailmap; and a
// .gitmodules that git's fsck refuses (checkGitmodules).
func checkTreeNames(st *repo.Store, h repo.Hash) error {
	data, err := st.ReadType(h, repo.Tree)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	it := repo.NewTreeIter(data)
	for {
		e, ok := it.Next()
		if !ok {
			break
		}
		n := string(e.Name)
		if err := checkEntryName(n); err != nil {
			return fmt.Errorf("tree %s has an entry named %q, which git refuses: %v", h, n, err)
		}
		if seen[n] {
			return fmt.Errorf("tree %s has two entries named %q, which git refuses", h, n)
		}
		seen[n] = true
		if e.Mode&0o170000 == 0o120000 {
			for _, f := range dotfilesNoLink {
				if sameFile(n, f) {
					return fmt.Errorf("tree %s has a symlink named %q, which git refuses: git reads that file from the tree, never through a link", h, n)
				}
			}
		}
		if e.Mode&0o170000 == 0o100000 && sameFile(n, foldedModules) {
			blob, err := st.ReadType(e.Hash, repo.Blob)
			if err != nil {
				return err
			}
			if err := checkGitmodules(blob); err != nil {
				return fmt.Errorf("the .gitmodules in tree %s (%q) is refused: %v", h, n, err)
			}
		}
	}
	return it.Err()
}

// checkEntryName checks one tree entry's name.
func checkEntryName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("not a file name")
	}
	// Windows reads a backslash as a separator: each part must pass.
	for _, part := range strings.Split(n, "\\") {
		f := foldName(part)
		if strings.Trim(f, ".") == "" {
			return fmt.Errorf("a file system reads %q as empty or dots only", part)
		}
		if f == foldedDotGit || shortNameOf(f, foldedDotGit) {
			return fmt.Errorf("a checkout on macOS or Windows would take it for .git")
		}
	}
	return nil
}
