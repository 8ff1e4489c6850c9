package gate_test

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
)

// garbage leaves what a crash in the middle of a push leaves: a quarantine
// with a partial pack and stale ref locks. It returns the paths, and a
// fresh lock that must be kept (the host's git may hold it right now).
func garbage(t *testing.T, stage string) (stale []string, fresh string) {
	t.Helper()
	q := filepath.Join(stage, "objects", "gate-incoming-123456")
	must(t, os.MkdirAll(q, 0o755))
	must(t, os.WriteFile(filepath.Join(q, "tmp.pack"), make([]byte, 64<<10), 0o444))
	old := time.Now().Add(-time.Hour)
	for _, l := range []string{"refs/heads/bottle/b1/work.lock", "packed-refs.lock"} {
		p := filepath.Join(stage, filepath.FromSlash(l))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte("0123\n"), 0o644))
		must(t, os.Chtimes(p, old, old))
		stale = append(stale, p)
	}
	fresh = filepath.Join(stage, "refs", "heads", "bottle", "b1", "fresh.lock")
	must(t, os.WriteFile(fresh, nil, 0o644))
	return append(stale, q), fresh
}

func gone(t *testing.T, when string, paths []string, fresh string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: %s is still there", when, p)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("%s: the fresh lock %s was removed: %v", when, fresh, err)
	}
}

// What a crashed or refused push leaves is removed when the gate starts
// and after every push; a stale lock no longer blocks its ref.
func TestPushGarbageRemoved(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	e.gate.Close()

	stale, fresh := garbage(t, e.stage)
	g, url := e.serve(e.stage)
	defer g.Close()
	gone(t, "at start", stale, fresh)
	must(t, os.Remove(fresh))

	e.git(c, "remote", "set-url", "origin", url)
	e.commitFile(c, "a.txt", "a\n", "a")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/work")

	stale, fresh = garbage(t, e.stage)
	e.commitFile(c, "b.txt", "b\n", "b")
	e.gitFail(c, "push", "origin", "HEAD:refs/heads/main")
	gone(t, "after a refused push", stale, fresh)

	stale, fresh = garbage(t, e.stage)
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/other")
	gone(t, "after a push", stale, fresh)
}

// A bottle's pushes may store at most max_pushed_bytes in all; a push that
// would go beyond is refused before it is indexed, saying what to do.
func TestPushQuota(t *testing.T) {
	e := newEnv(t, func(c *gate.Config) { c.MaxPushedBytes = 300 << 10 })
	c := e.clone("work")
	rng := rand.NewChaCha8([32]byte{1})
	random := func(name string) {
		b := make([]byte, 200<<10) // random: the pack is as large as the file
		rng.Read(b)
		must(t, os.WriteFile(filepath.Join(c, name), b, 0o644))
		e.git(c, "add", name)
		e.git(c, "commit", "-q", "-m", name)
	}
	random("one.bin")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/data")

	random("two.bin")
	out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/data")
	wantContains(t, out, "max_pushed_bytes")
	ents, _ := os.ReadDir(filepath.Join(e.stage, "objects"))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "gate-incoming-") {
			t.Errorf("quarantine %s left behind", ent.Name())
		}
	}

	// Small pushes fit in what is left, until nothing is.
	e.git(c, "reset", "-q", "--hard", "HEAD~1")
	for i := 0; ; i++ {
		b := make([]byte, 40<<10)
		rng.Read(b)
		must(t, os.WriteFile(filepath.Join(c, "small.bin"), b, 0o644))
		e.git(c, "add", "small.bin")
		e.git(c, "commit", "-q", "-m", "small")
		out, err := e.run(e.home, c, "push", "origin", "HEAD:refs/heads/bottle/b1/data")
		if err == nil {
			if i > 5 {
				t.Fatalf("pushed %d small packs past a quota of 300 KiB", i)
			}
			continue
		}
		wantContains(t, out, "quota", "max_pushed_bytes")
		break
	}

	// The quota is the bottle's: a restarted gate still counts what was
	// stored, and refuses every push once it is all used.
	e.gate.Close()
	cfg := gate.Config{Listen: "127.0.0.1:0", Bottle: testBottle, Repo: e.stage, TokenFile: e.tokenFile, MaxPushedBytes: 200 << 10}
	g, err := gate.New(cfg)
	must(t, err)
	defer g.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Serve(ctx, ln)
	e.git(c, "remote", "set-url", "origin", "http://"+ln.Addr().String()+"/repo.git")
	e.git(c, "commit", "-q", "--allow-empty", "-m", "tiny")
	out = e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/data")
	wantContains(t, out, "already store", "all of its quota", "max_pushed_bytes, 200 KiB")
}
