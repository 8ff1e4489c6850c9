package gate_test

import (
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
)

// Refs that cannot exist together (a/b needs a folder a, a needs a file
// a) in one push are refused whole: neither is created.
func TestConflictingRefsInOnePushRefused(t *testing.T) {
	e := newEnv(t, func(c *gate.Config) { c.Push.Refs = []string{"refs/heads/bottle/b1/**"} })
	c := e.clone("work")
	e.commitFile(c, "agent.txt", "work\n", "agent work")
	for _, order := range [][]string{
		{"HEAD:refs/heads/bottle/b1/a/b", "HEAD:refs/heads/bottle/b1/a"},
		{"HEAD:refs/heads/bottle/b1/a", "HEAD:refs/heads/bottle/b1/a/b"},
	} {
		out := e.gitFail(c, append([]string{"push", "origin"}, order...)...)
		wantContains(t, out, "conflict")
		for _, ref := range []string{"refs/heads/bottle/b1/a/b", "refs/heads/bottle/b1/a"} {
			if got := e.stageRef(ref); got != "" {
				t.Errorf("push %v: %s was created (%s): half of a refused push applied", order, ref, got)
			}
		}
	}
	e.git(e.stage, "fsck", "--strict")
	// Each alone is fine.
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/a/b")
}
