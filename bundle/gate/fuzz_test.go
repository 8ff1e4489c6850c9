package gate

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/gate/gatetest"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/pktline"
	"github.com/docker-bottle/docker-bottle/bundle/gate/internal/repo"
)

// FuzzReadCommands parses arbitrary bytes as the commands of a push: at
// most maxCommands updates, each with a ref name of at most maxRefName
// bytes, and no panic.
func FuzzReadCommands(f *testing.F) {
	z, h := strings.Repeat("0", 40), strings.Repeat("ab", 20)
	line := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
	for _, s := range []string{
		line(z+" "+h+" refs/heads/x\x00report-status side-band-64k\n") + "0000PACK",
		line(z+" "+h+" refs/heads/x\n") + line(h+" "+z+" refs/heads/y\n") + "0000",
		line("shallow "+h+"\n") + line(z+" "+h+" refs/heads/x\n") + "0000",
		line("push-cert\x00push-cert\n") + "0000",
		line(z+" "+h+" "+strings.Repeat("r", 2000)+"\n") + "0000",
		line("garbage") + "0000", "0000", "", "0001",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, _, err := readCommands(pktline.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if len(cmds) > maxCommands {
			t.Fatalf("%d commands", len(cmds))
		}
		for _, c := range cmds {
			if len(c.ref) > maxRefName {
				t.Fatalf("a ref name of %d bytes", len(c.ref))
			}
		}
	})
}

// FuzzReceivePack pushes a commit, a tree and a tag of arbitrary content
// (the objects git's own checks would see last) to a gate over a
// repository of one commit: the gate answers with a report, never panics
// (decide turns a panic into a refusal, which this target counts as a
// failure), and leaves no quarantine behind.
func FuzzReceivePack(f *testing.F) {
	tmpl := f.TempDir()
	main := fuzzRepo(f, tmpl)
	tree := "100644 a.txt\x00" + string(make([]byte, 20))
	f.Add([]byte(fmt.Sprintf("tree %s\nparent %s\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nmsg\n", gatetest.Hash(gatetest.Tree, []byte(tree)), main)),
		[]byte(tree), []byte("object "+main+"\ntype commit\ntag f\ntagger A <a@x> 1 +0000\n\nt\n"))
	f.Add([]byte("tree "+main+"\n\n"), []byte("40000 .github\x00"+string(make([]byte, 20))), []byte{})
	f.Add([]byte("parent x\n"), []byte("100644 \x00"), []byte("object "+main+"\n"))
	f.Fuzz(func(t *testing.T, commit, tree, tag []byte) {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "token"), 0o600); err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		g, err := New(Config{Listen: "127.0.0.1:0", Bottle: "b1", Repo: filepath.Join(dir, "repo.git"), TokenFile: filepath.Join(dir, "token"),
			ProtectedPaths: []string{".github/**"}, Push: PushRules{Refs: []string{"refs/heads/bottle/b1/*", "refs/tags/*"}, AllowTags: true}},
			WithLogger(log.New(&logged, "", 0)), WithMemoryLimit(64<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		p := gatetest.NewPack()
		p.Whole(gatetest.Tree, tree)
		p.Whole(gatetest.Commit, commit)
		cmds := []gatetest.Command{{Old: gatetest.ZeroID, New: gatetest.Hash(gatetest.Commit, commit), Ref: "refs/heads/bottle/b1/f"}}
		if len(tag) > 0 {
			p.Whole(gatetest.Tag, tag)
			cmds = append(cmds, gatetest.Command{Old: gatetest.ZeroID, New: gatetest.Hash(gatetest.Tag, tag), Ref: "refs/tags/f"})
		}
		req := httptest.NewRequest(http.MethodPost, "/repo.git/git-receive-pack", bytes.NewReader(gatetest.ReceivePackBody(cmds, p.Bytes())))
		req.SetBasicAuth("bottle", "fuzz-token")
		req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		w := httptest.NewRecorder()
		start := time.Now()
		g.ServeHTTP(w, req)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the push took %v", d)
		}
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "unpack ") {
			t.Fatalf("%d %q", w.Code, w.Body.String())
		}
		if strings.Contains(logged.String(), "internal error") {
			t.Fatalf("the gate failed inside: %s", logged.String())
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "repo.git", "objects"))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "gate-incoming-") {
				t.Fatalf("quarantine %s left behind", e.Name())
			}
		}
	})
}

// fuzzRepo makes, without git, a bare repository under dir whose main has
// one commit, and the token file; it returns the commit.
func fuzzRepo(f *testing.F, dir string) string {
	bare := filepath.Join(dir, "repo.git")
	for _, d := range []string{"objects/pack", "refs/heads"} {
		if err := os.MkdirAll(filepath.Join(bare, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bare, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("fuzz-token\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	r, err := repo.Open(bare)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	p := gatetest.NewPack()
	blob := []byte("hello\n")
	tree := "100644 a.txt\x00" + string(mustHex(f, gatetest.Hash(gatetest.Blob, blob)))
	commit := "tree " + gatetest.Hash(gatetest.Tree, []byte(tree)) + "\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nfirst\n"
	p.Whole(gatetest.Blob, blob)
	p.Whole(gatetest.Tree, []byte(tree))
	p.Whole(gatetest.Commit, []byte(commit))
	ix, err := r.IndexPack(bytes.NewReader(p.Bytes()), repo.Thin{}, repo.IndexLimits{})
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Accept(ix); err != nil {
		f.Fatal(err)
	}
	c, _ := repo.ParseHash(gatetest.Hash(gatetest.Commit, []byte(commit)))
	if err := r.UpdateRefs([]repo.RefUpdate{{Name: "refs/heads/main", New: c}}); err != nil {
		f.Fatal(err)
	}
	return c.String()
}

func mustHex(f *testing.F, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
