package gate_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
)

// given is an env with an object the bottle was never given: a blob that
// no ref reaches lies in the stage repository (a local clone hard-links
// the user's whole store, deleted secrets included).
type given struct {
	*env
	token  string
	head   string // the stage's main
	secret string // the blob's content
	u      string // the unreachable blob
	r      string // a name nothing has
}

func newGiven(t *testing.T) *given {
	e := newEnv(t, nil)
	tok, err := os.ReadFile(e.tokenFile)
	must(t, err)
	g := &given{env: e, token: strings.TrimSpace(string(tok)), head: e.stageRef("refs/heads/main"),
		secret: "TOP SECRET the user deleted\n"}
	g.u = strings.TrimSpace(e.gitStdin(e.stage, g.secret, "hash-object", "-w", "--stdin"))
	g.r = gatetest.Hash(gatetest.Blob, []byte("stored nowhere\n"))
	return g
}

func (g *given) leak(entry, base string, baseSize int) (string, []byte) {
	return gatetest.Leak(g.head, entry, base, baseSize)
}

func (g *given) push(ref, newID string, pack []byte) string {
	g.t.Helper()
	body := gatetest.ReceivePackBody([]gatetest.Command{{Old: gatetest.ZeroID, New: newID, Ref: ref}}, pack)
	status, report, err := gatetest.Push(&http.Client{Timeout: time.Minute}, g.url, g.token, body)
	if err != nil || status != http.StatusOK {
		g.t.Fatalf("push: %d %v", status, err)
	}
	return report
}

// M4: a thin pack's delta base, or a tree entry, naming an object the
// bottle was never given is refused, and the object cannot be fetched
// back through the pushed branch.
func TestPushCannotLaunderUnreachableObjects(t *testing.T) {
	g := newGiven(t)
	derived := gatetest.Hash(gatetest.Blob, []byte(g.secret+"x"))
	for i, c := range []struct{ name, entry, base string }{
		{"the review's proof: a tree names it and a junk delta uses it as base", g.u, g.u},
		{"a tree names what a delta derives from it", derived, g.u},
		{"a tree names it, no delta", g.u, ""},
	} {
		ref := fmt.Sprintf("refs/heads/bottle/b1/leak%d", i)
		commit, pack := g.leak(c.entry, c.base, len(g.secret))
		report := g.push(ref, commit, pack)
		if !strings.Contains(report, "ng "+ref) || !strings.Contains(report, "never given") {
			t.Errorf("%s: %q, want the push refused as using an object never given", c.name, report)
		}
		// Push-then-fetch, with the real git.
		dst := filepath.Join(g.dir, fmt.Sprintf("fetch%d", i))
		g.git(g.dir, "init", "-q", dst)
		if out, err := g.run(g.home, dst, "fetch", "-q", g.url, ref); err == nil {
			out, _ := g.run(g.home, dst, "cat-file", "-p", "FETCH_HEAD:leak.txt")
			t.Errorf("%s: the pushed branch could be fetched; leak.txt reads %q", c.name, out)
		} else if strings.Contains(out, "TOP SECRET") {
			t.Errorf("%s: the secret reached the client: %s", c.name, out)
		}
	}
}

var hexName = regexp.MustCompile(`[0-9a-f]{40}`)

// L4: a push answers the same for an object the store has but the bottle
// was never given and for one that exists nowhere.
func TestPushAnswersAlikeForUnknownAndUnreachable(t *testing.T) {
	g := newGiven(t)
	uc := g.git(g.stage, "commit-tree", "-m", "unreachable", g.stageRef("refs/heads/main^{tree}"))
	rc := gatetest.Hash(gatetest.Commit, []byte("tree "+g.stageRef("refs/heads/main^{tree}")+"\n\nnowhere\n"))
	empty := gatetest.NewPack().Bytes()
	for _, c := range []struct {
		name string
		push func(x string, size int) string
		u, r string
	}{
		{"a tree entry names it", func(x string, _ int) string {
			commit, pack := g.leak(x, "", 0)
			return g.push("refs/heads/bottle/b1/l4a", commit, pack)
		}, g.u, g.r},
		{"a thin pack's delta uses it as base", func(x string, size int) string {
			blob := gatetest.Hash(gatetest.Blob, []byte("harmless\n"))
			commit, pack := g.leak(blob, x, size)
			return g.push("refs/heads/bottle/b1/l4b", commit, pack)
		}, g.u, g.r},
		{"the push sets a ref to it", func(x string, _ int) string {
			return g.push("refs/heads/bottle/b1/l4c", x, empty)
		}, uc, rc},
	} {
		ru := hexName.ReplaceAllString(c.push(c.u, len(g.secret)), "<id>")
		rr := hexName.ReplaceAllString(c.push(c.r, len(g.secret)), "<id>")
		if ru != rr {
			t.Errorf("%s: the gate answers differently for a stored, unreachable object:\n%s\nand for one it does not have:\n%s", c.name, ru, rr)
		}
		if !strings.Contains(ru, "ng ") {
			t.Errorf("%s: %q, want the push refused", c.name, ru)
		}
	}
}
