package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nameOf is HashObject, which must find no collision attack.
func nameOf(t testing.TB, typ Type, data []byte) Hash {
	t.Helper()
	h, err := HashObject(typ, data)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func git(t testing.TB, dir string, stdin io.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@e",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@e", "HOME="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// history makes a bare repository with deltified packs and loose objects.
func history(t *testing.T) (work, bare string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the repo tests compare with the real git, which is not installed: %v", err)
	}
	dir := t.TempDir()
	work = filepath.Join(dir, "work")
	git(t, dir, nil, "init", "-q", "-b", "main", work)
	content := strings.Repeat("some text that deltas well\n", 200)
	for i := 0; i < 30; i++ {
		content = strings.Replace(content, "some", fmt.Sprintf("v%d", i), 3)
		os.MkdirAll(filepath.Join(work, "d", strconv.Itoa(i%3)), 0o755)
		os.WriteFile(filepath.Join(work, "d", strconv.Itoa(i%3), "f.txt"), []byte(content), 0o644)
		git(t, work, nil, "add", "-A")
		git(t, work, nil, "commit", "-q", "-m", fmt.Sprintf("c%d", i))
		if i == 20 {
			git(t, work, nil, "tag", "-a", "v1", "-m", "tag")
			git(t, work, nil, "gc", "-q")
		}
	}
	bare = filepath.Join(dir, "bare.git")
	git(t, dir, nil, "clone", "-q", "--bare", work, bare)
	return work, bare
}

func TestReadMatchesGit(t *testing.T) {
	_, bare := history(t)
	r, err := Open(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := r.Store()
	list := git(t, bare, nil, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(line)
		h, err := ParseHash(f[0])
		if err != nil {
			t.Fatal(err)
		}
		typ, data, err := st.Read(h)
		if err != nil {
			t.Fatalf("Read %s: %v", h, err)
		}
		if typ.String() != f[1] || nameOf(t, typ, data) != h {
			t.Fatalf("%s: read a %s whose hash is %s", h, typ, nameOf(t, typ, data))
		}
		n++
	}
	if n < 90 {
		t.Fatalf("only %d objects compared", n)
	}
	refs, err := r.Refs(st)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ref := range refs {
		names = append(names, ref.Name)
		if ref.Name == "refs/tags/v1" && ref.Peeled.IsZero() {
			t.Errorf("v1 not peeled")
		}
	}
	if strings.Join(names, " ") != "refs/heads/main refs/tags/v1" {
		t.Errorf("refs %v", names)
	}
}

// TestWritePackIndexable has git itself check the packs the gate sends: a
// full one and a thin one against what the receiver has.
func TestWritePackIndexable(t *testing.T) {
	_, bare := history(t)
	r, err := Open(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := r.Store()
	head, _, _ := r.Resolve("refs/heads/main")
	old, _ := ParseHash(strings.TrimSpace(git(t, bare, nil, "rev-parse", "main~10")))

	for _, thin := range []bool{false, true} {
		w := NewWalker(st, nil)
		o := EnumOptions{Wants: []Hash{head}}
		if thin {
			o.Haves = []Hash{old}
		}
		en, err := w.Enumerate(o)
		if err != nil {
			t.Fatal(err)
		}
		var pack bytes.Buffer
		stats, err := st.WritePack(&pack, en.Objects, PackOptions{OfsDelta: true, Thin: thin, Has: en.Has})
		if err != nil {
			t.Fatal(err)
		}
		if stats.Reused == 0 || stats.Deltas == 0 {
			t.Errorf("thin=%v: nothing reused: %+v", thin, stats)
		}
		dst := filepath.Join(t.TempDir(), "dst")
		if thin {
			git(t, filepath.Dir(dst), nil, "clone", "-q", "--bare", "--no-local", bare, dst)
			git(t, dst, nil, "update-ref", "refs/heads/main", old.String())
			git(t, dst, nil, "reflog", "expire", "--expire=now", "--all")
			git(t, dst, nil, "gc", "-q", "--prune=now")
			git(t, dst, bytes.NewReader(pack.Bytes()), "index-pack", "--stdin", "--fix-thin", "--strict")
		} else {
			git(t, filepath.Dir(dst), nil, "init", "-q", "--bare", dst)
			git(t, dst, bytes.NewReader(pack.Bytes()), "index-pack", "--stdin", "--strict")
		}
		git(t, dst, nil, "update-ref", "refs/heads/main", head.String())
		git(t, dst, nil, "fsck", "--strict", "--no-dangling")
	}
}

// TestIndexPackThin feeds IndexPack the thin pack git push would send and
// has git verify the completed pack and its index.
func TestIndexPackThin(t *testing.T) {
	work, bare := history(t)
	old := strings.TrimSpace(git(t, work, nil, "rev-parse", "HEAD"))
	for i := 0; i < 3; i++ {
		f := filepath.Join(work, "d", "1", "f.txt")
		b, _ := os.ReadFile(f)
		os.WriteFile(f, append(b, []byte(fmt.Sprintf("more %d\n", i))...), 0o644)
		git(t, work, nil, "commit", "-q", "-am", "push me")
	}
	newHead := strings.TrimSpace(git(t, work, nil, "rev-parse", "HEAD"))
	pack := git(t, work, strings.NewReader(newHead+"\n^"+old+"\n"), "pack-objects", "--thin", "--stdout", "--revs", "-q")

	r, err := Open(bare)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ix, err := r.IndexPack(strings.NewReader(pack), Thin{Store: r.Store()}, IndexLimits{MaxPackBytes: 1 << 20, MaxObjectBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	nh, _ := ParseHash(newHead)
	if ix.Types[nh] != Commit {
		t.Fatalf("new commit not indexed: %v", ix.Types)
	}
	// The bases appended to complete the pack were not sent: they are
	// borrowed, and a caller may refuse to lend them.
	if len(ix.Borrowed) == 0 {
		t.Fatalf("a thin pack borrowed no base")
	}
	for _, b := range ix.Borrowed {
		if _, sent := ix.Types[b]; sent {
			t.Errorf("borrowed base %s counted as sent", b)
		}
	}
	refuse := errors.New("not yours")
	var asked []Hash
	_, err = r.IndexPack(strings.NewReader(pack), Thin{Store: r.Store(), Allow: func(hs []Hash) error { asked = hs; return refuse }},
		IndexLimits{MaxPackBytes: 1 << 20, MaxObjectBytes: 1 << 20})
	borrowed := map[Hash]bool{}
	for _, b := range ix.Borrowed {
		borrowed[b] = true
	}
	if !errors.Is(err, refuse) || len(asked) == 0 {
		t.Errorf("a refused base: %v after asking about %v", err, asked)
	}
	for _, h := range asked {
		if !borrowed[h] {
			t.Errorf("asked about %s, which the pack needs not borrow (it borrows %v)", h, ix.Borrowed)
		}
	}
	if _, _, err := r.Store().With(ix).Read(nh); err != nil {
		t.Fatalf("reading through the quarantine: %v", err)
	}
	if r.Store().Has(nh) {
		t.Fatalf("quarantined object visible before Accept")
	}
	if err := r.Accept(ix); err != nil {
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.idx"))
	for _, p := range idx {
		git(t, bare, nil, "verify-pack", p)
	}
	if err := r.UpdateRefs([]RefUpdate{{Name: "refs/heads/main", Old: mustHash(t, old), New: nh}}); err != nil {
		t.Fatal(err)
	}
	git(t, bare, nil, "fsck", "--strict", "--no-dangling")
	if err := r.UpdateRefs([]RefUpdate{{Name: "refs/heads/main", Old: mustHash(t, old), New: nh}}); err == nil {
		t.Errorf("stale update accepted")
	}

	// Corrupt and truncated packs are refused and leave nothing behind.
	bad := []byte(pack)
	bad[len(bad)/2] ^= 0xff
	for _, p := range [][]byte{bad, []byte(pack)[:len(pack)-30], []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x01")} {
		if _, err := r.IndexPack(bytes.NewReader(p), Thin{Store: r.Store()}, IndexLimits{MaxPackBytes: 1 << 20}); err == nil {
			t.Errorf("bad pack accepted")
		}
	}
	if _, err := r.IndexPack(strings.NewReader(pack), Thin{Store: r.Store()}, IndexLimits{MaxPackBytes: 100}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized pack: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(bare, "objects"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), quarantinePrefix) {
			t.Errorf("quarantine left behind: %s", e.Name())
		}
	}
}

func mustHash(t *testing.T, s string) Hash {
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestApplyDeltaRejectsBadInput(t *testing.T) {
	base := []byte("hello world")
	// Source size 11, target size 5, copy 5 bytes from offset 0.
	if out, err := applyDelta(base, []byte{11, 5, 0x90, 5}, 0); err != nil || string(out) != "hello" {
		t.Fatalf("copy: %q %v", out, err)
	}
	for _, d := range [][]byte{
		{12, 5, 0x90, 5},       // wrong base size
		{11, 5, 0x90, 6},       // result longer than declared
		{11, 5, 0x91, 10, 5},   // copy past the end
		{11, 5, 0},             // reserved opcode
		{11, 3, 5, 'a', 'b'},   // truncated insert
		{11, 0xff, 0xff, 0xff}, // truncated header
	} {
		if _, err := applyDelta(base, d, 0); err == nil {
			t.Errorf("delta %v accepted", d)
		}
	}
	if _, err := applyDelta(base, []byte{11, 0x80, 0x80, 0x80, 0x01, 0x90, 5}, 1<<20); err == nil {
		t.Errorf("huge declared result accepted")
	}
}
