package gate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/bundle/protect"
	"github.com/docker-bottle/docker-bottle/gitstage"
)

func TestCloneAndFetchEveryProtocol(t *testing.T) {
	e := newEnv(t, nil)
	userHead := e.git(e.user, "rev-parse", "HEAD")
	for _, v := range []string{"0", "1", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			e.t = t
			c := e.clone("clone-v"+v, "-c", "protocol.version="+v)
			if got := e.git(c, "rev-parse", "HEAD"); got != userHead {
				t.Errorf("clone HEAD = %s, want %s", got, userHead)
			}
			e.git(c, "fsck", "--strict")
			wantContains(t, e.git(c, "tag", "-l"), "v1", "light")
			wantContains(t, e.git(c, "branch", "-r"), "origin/feature", "origin/main")
			if got := e.git(c, "cat-file", "-t", "v1"); got != "tag" {
				t.Errorf("v1 is a %s, want an annotated tag", got)
			}

			// New host commits reach the stage repository (as a new bottle's
			// would have them) and the clone by a plain fetch.
			newHead := e.commitFile(e.user, "src/new-"+v+".txt", "new\n", "host commit "+v)
			e.fetchHost()
			e.git(c, "-c", "protocol.version="+v, "fetch", "-q", "origin")
			if got := e.git(c, "rev-parse", "origin/main"); got != newHead {
				t.Errorf("after fetch origin/main = %s, want %s", got, newHead)
			}
			e.git(c, "fsck", "--strict")
			userHead = newHead
		})
	}
}

func TestShallowClone(t *testing.T) {
	e := newEnv(t, nil)
	total, _ := strconv.Atoi(e.git(e.user, "rev-list", "--count", "HEAD"))
	for _, v := range []string{"0", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			e.t = t
			pv := "protocol.version=" + v
			c := e.clone("shallow-v"+v, "-c", pv, "--depth", "1")
			count := func() int {
				n, _ := strconv.Atoi(e.git(c, "rev-list", "--count", "HEAD"))
				return n
			}
			if n := count(); n != 1 {
				t.Fatalf("depth 1 clone has %d commits", n)
			}
			if _, err := os.Stat(filepath.Join(c, ".git", "shallow")); err != nil {
				t.Fatalf("depth 1 clone is not shallow: %v", err)
			}
			e.git(c, "fsck")

			// A plain fetch into the shallow clone after a host commit.
			newHead := e.commitFile(e.user, "shallow-"+v+".txt", "x\n", "host commit for shallow "+v)
			total++
			e.fetchHost()
			e.git(c, "-c", pv, "fetch", "-q", "origin")
			if got := e.git(c, "rev-parse", "origin/main"); got != newHead {
				t.Fatalf("origin/main = %s, want %s", got, newHead)
			}
			e.git(c, "merge", "-q", "--ff-only", "origin/main")
			if n := count(); n != 2 {
				t.Errorf("after fetch: %d commits, want 2", n)
			}
			e.git(c, "-c", pv, "fetch", "-q", "--depth", "4", "origin")
			e.git(c, "merge", "-q", "--ff-only", "origin/main")
			if n := count(); n != 4 {
				t.Errorf("after --depth 4: %d commits, want 4", n)
			}
			e.git(c, "-c", pv, "fetch", "-q", "--deepen", "2", "origin")
			if n := count(); n != 6 {
				t.Errorf("after --deepen 2: %d commits, want 6", n)
			}
			e.git(c, "-c", pv, "fetch", "-q", "--unshallow", "origin")
			if n := count(); n != total {
				t.Errorf("after --unshallow: %d commits, want %d", n, total)
			}
			e.git(c, "fsck", "--strict")
		})
	}
}

func TestPartialClone(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("partial", "--filter=blob:none")
	// The checkout and `log -p` fetch the missing blobs lazily, by name:
	// wants that are no ref tip.
	out := e.git(c, "log", "-p", "--format=%H")
	wantContains(t, out, "a loose object")
	e.git(c, "fsck")
	if got, want := e.git(c, "rev-parse", "HEAD"), e.git(e.user, "rev-parse", "HEAD"); got != want {
		t.Errorf("HEAD = %s, want %s", got, want)
	}
}

func TestPushRules(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	ctx := context.Background()

	// Allowed: the bottle's own branch, then a fast-forward on it.
	first := e.commitFile(c, "agent.txt", "work 1\n", "agent work")
	out := e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/feature")
	wantContains(t, out, "bottle/b1/feature")
	second := e.commitFile(c, "agent.txt", "work 2\n", "more agent work")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/feature")
	if got := e.stageRef("refs/heads/bottle/b1/feature"); got != second {
		t.Fatalf("stage bottle/b1/feature = %s, want %s", got, second)
	}
	e.git(e.stage, "fsck", "--strict")

	// The user gets the work with a plain fetch from the registered remote.
	remote := gitstage.RemoteName(testBottle)
	must(t, gitstage.AddRemote(ctx, e.user, remote, e.stage, gitstage.WithFetchRefspecs(gitstage.BottleRefspec(testBottle))))
	e.git(e.user, "fetch", "-q", remote)
	if got := e.git(e.user, "rev-parse", remote+"/feature"); got != second {
		t.Errorf("user's %s/feature = %s, want %s", remote, got, second)
	}
	if out := e.git(e.user, "branch", "-r"); strings.Contains(out, remote+"/main") {
		t.Errorf("the bottle remote should bring only the bottle's branches:\n%s", out)
	}

	mainBefore := e.stageRef("refs/heads/main")
	out = e.gitFail(c, "push", "origin", "HEAD:main")
	wantContains(t, out, "remote: refused: refs/heads/main is not writable from this bottle", "[remote rejected]")
	if got := e.stageRef("refs/heads/main"); got != mainBefore {
		t.Errorf("main moved to %s", got)
	}

	e.git(c, "commit", "-q", "--amend", "-m", "rewritten")
	rewritten := e.git(c, "rev-parse", "HEAD")
	out = e.gitFail(c, "push", "--force", "origin", "HEAD:refs/heads/bottle/b1/feature")
	wantContains(t, out, "remote: refused:", "non-fast-forward")
	if got := e.stageRef("refs/heads/bottle/b1/feature"); got != second {
		t.Errorf("force push moved the branch to %s", got)
	}
	if e.hasObject(rewritten) {
		t.Errorf("the refused commit %s is in the stage repository", rewritten)
	}

	out = e.gitFail(c, "push", "origin", ":refs/heads/bottle/b1/feature")
	wantContains(t, out, "remote: refused:", "deleting refs is not allowed")
	if e.stageRef("refs/heads/bottle/b1/feature") != second {
		t.Errorf("the branch was deleted")
	}

	e.git(c, "tag", "agent-tag", first)
	out = e.gitFail(c, "push", "origin", "refs/tags/agent-tag")
	wantContains(t, out, "remote: refused:", "refs/tags/agent-tag")
	if e.stageRef("refs/tags/agent-tag") != "" {
		t.Errorf("the tag was created")
	}

	// All or nothing: an allowed ref next to a refused one is not applied.
	e.git(c, "reset", "-q", "--hard", second)
	third := e.commitFile(c, "agent.txt", "work 3\n", "third")
	out = e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/feature", "HEAD:refs/heads/other")
	wantContains(t, out, "refs/heads/other is not writable", "a push is all or nothing")
	if got := e.stageRef("refs/heads/bottle/b1/feature"); got != second {
		t.Errorf("half of a refused push was applied: feature = %s (third %s)", got, third)
	}
	e.git(e.stage, "fsck", "--strict")
}

func TestProtectedPathsRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	for _, p := range []string{".github/workflows/ci.yml", ".husky/pre-commit", ".GitHub/Workflows/evil.yml"} {
		e.git(c, "reset", "-q", "--hard", "origin/main")
		bad := e.commitFile(c, p, "run: curl evil\n", "touch "+p)
		// Bury it under a harmless commit: every new commit is checked.
		e.commitFile(c, "readme.txt", "harmless\n", "harmless")
		out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/ci")
		wantContains(t, out, "remote: refused:", "touches protected path "+p)
		if e.stageRef("refs/heads/bottle/b1/ci") != "" {
			t.Errorf("%s: the branch was created", p)
		}
		if e.hasObject(bad) {
			t.Errorf("%s: the refused commit is in the stage repository", p)
		}
	}
	// A merge that brings in nothing new at protected paths is fine, as is
	// a commit elsewhere.
	e.git(c, "reset", "-q", "--hard", "origin/main")
	e.commitFile(c, "docs/github-workflows.md", "not a workflow\n", "docs")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/ok")
}

func TestProtectedPathsApproval(t *testing.T) {
	var mu sync.Mutex
	var asked []approval.Request
	answer := approval.AllowOnce
	d := approval.DeciderFunc(func(ctx context.Context, req approval.Request) (approval.Decision, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, req)
		return answer, nil
	})
	e := newEnv(t, func(c *gate.Config) { c.Approvals.Enabled = true }, gate.WithDecider(d))
	c := e.clone("work")
	ok := e.commitFile(c, ".github/workflows/ci.yml", "on: push\n", "new workflow")
	out := e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/ci")
	wantContains(t, out, "waiting up to", "approved")
	if got := e.stageRef("refs/heads/bottle/b1/ci"); got != ok {
		t.Fatalf("approved push not applied: %q", got)
	}
	if len(asked) != 1 || asked[0].Kind != approval.Push || asked[0].Subject != "refs/heads/bottle/b1/ci" ||
		!strings.Contains(asked[0].Detail, ".github/workflows/ci.yml") {
		t.Fatalf("decider asked %+v", asked)
	}

	mu.Lock()
	answer = approval.Deny
	mu.Unlock()
	e.commitFile(c, ".github/workflows/ci.yml", "on: pull_request\n", "change workflow")
	out = e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/ci")
	wantContains(t, out, "a human denied it")
	if got := e.stageRef("refs/heads/bottle/b1/ci"); got != ok {
		t.Errorf("denied push applied: %s", got)
	}

	recs := readAudit(t, e.auditFile)
	var approvals []string
	for _, r := range recs {
		if r["event"] != "push" {
			continue
		}
		for _, ref := range r["refs"].([]any) {
			m := ref.(map[string]any)
			if a, ok := m["approval"].(string); ok {
				approvals = append(approvals, a)
			}
		}
	}
	if strings.Join(approvals, ",") != "allow-once,deny" {
		t.Errorf("audited approvals %v, want allow-once,deny", approvals)
	}
}

func TestWrongTokenRefused(t *testing.T) {
	e := newEnv(t, nil)
	badHome := filepath.Join(e.dir, "badhome")
	must(t, os.MkdirAll(badHome, 0o700))
	badToken := filepath.Join(e.dir, "bad-token")
	must(t, os.WriteFile(badToken, []byte("not-the-token"), 0o600))
	e.writeGitConfig(badHome, badToken)
	out, err := e.run(badHome, e.dir, "clone", "-q", e.url, filepath.Join(e.dir, "nope"))
	if err == nil {
		t.Fatalf("clone with a wrong token succeeded:\n%s", out)
	}
	wantContains(t, out, "Authentication failed")

	resp, err := http.Get(e.url + "/info/refs?service=git-upload-pack")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="docker bottle gate"` {
		t.Errorf("no credentials: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	recs := readAudit(t, e.auditFile)
	found := false
	for _, r := range recs {
		if r["event"] == "auth" && r["decision"] == "deny" {
			found = true
		}
	}
	if !found {
		t.Errorf("wrong token not audited: %v", recs)
	}
}

func TestConcurrentClones(t *testing.T) {
	e := newEnv(t, nil)
	want := e.git(e.user, "rev-parse", "HEAD")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dst := filepath.Join(e.dir, fmt.Sprintf("conc-%d", i))
			v := []string{"0", "2"}[i%2]
			if out, err := e.run(e.home, e.dir, "-c", "protocol.version="+v, "clone", "-q", e.url, dst); err != nil {
				errs[i] = fmt.Errorf("clone %d: %v\n%s", i, err, out)
				return
			}
			out, err := e.run(e.home, dst, "rev-parse", "HEAD")
			if err != nil || strings.TrimSpace(out) != want {
				errs[i] = fmt.Errorf("clone %d: HEAD %q (%v), want %s", i, out, err, want)
				return
			}
			if out, err := e.run(e.home, dst, "fsck"); err != nil {
				errs[i] = fmt.Errorf("clone %d: fsck: %v\n%s", i, err, out)
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestAuditRecords(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("work")
	e.commitFile(c, "x.txt", "x\n", "x")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/x")
	e.gitFail(c, "push", "origin", "HEAD:refs/heads/main")
	recs := readAudit(t, e.auditFile)
	var fetch, allow, deny map[string]any
	for _, r := range recs {
		switch {
		case r["event"] == "fetch" && r["decision"] == "allow":
			fetch = r
		case r["event"] == "push" && r["decision"] == "allow":
			allow = r
		case r["event"] == "push" && r["decision"] == "deny":
			deny = r
		}
	}
	if fetch == nil || allow == nil || deny == nil {
		t.Fatalf("missing audit records (fetch %v, allowed push %v, refused push %v) in %v", fetch != nil, allow != nil, deny != nil, recs)
	}
	if fetch["daemon"] != "gate" || fetch["bottle"] != testBottle || fetch["objects"] == nil || fetch["time"] == nil {
		t.Errorf("fetch record: %v", fetch)
	}
	wantContains(t, fmt.Sprint(fetch["refs"]), "refs/heads/main")
	ref := deny["refs"].([]any)[0].(map[string]any)
	if ref["ref"] != "refs/heads/main" || ref["result"] != "refused" || !strings.Contains(ref["reason"].(string), "not writable") ||
		ref["new"] != e.git(c, "rev-parse", "HEAD") || len(ref["old"].(string)) != 40 {
		t.Errorf("refused push record: %v", ref)
	}
	if r := allow["refs"].([]any)[0].(map[string]any); r["ref"] != "refs/heads/bottle/b1/x" || r["result"] != "ok" {
		t.Errorf("allowed push record: %v", r)
	}
}

func TestOversizedPackRefused(t *testing.T) {
	e := newEnv(t, func(c *gate.Config) { c.MaxPackBytes = 64 << 10 })
	c := e.clone("work")
	big := make([]byte, 300<<10) // random: the pack is as large as the file
	rand.NewChaCha8([32]byte{}).Read(big)
	must(t, os.WriteFile(filepath.Join(c, "big.bin"), big, 0o644))
	e.git(c, "add", "big.bin")
	e.git(c, "commit", "-q", "-m", "big")
	out := e.gitFail(c, "push", "origin", "HEAD:refs/heads/bottle/b1/big")
	wantContains(t, out, "max_pack_bytes")
	if e.stageRef("refs/heads/bottle/b1/big") != "" {
		t.Errorf("oversized push created the branch")
	}
}

func TestUnreachableObjectsNotServed(t *testing.T) {
	e := newEnv(t, nil)
	// An object in the user's store that no ref reaches: a local clone
	// hard-links it into the stage repository.
	secret := e.git(e.user, "commit-tree", "-m", "secret", e.git(e.user, "rev-parse", "HEAD^{tree}"))
	blob := strings.TrimSpace(e.gitStdin(e.user, "a secret the user deleted\n", "hash-object", "-w", "--stdin"))
	stage2 := filepath.Join(e.dir, "stage2.git")
	must(t, gitstage.Prepare(context.Background(), e.user, stage2))
	if _, err := e.run(e.home, stage2, "cat-file", "-e", blob); err != nil {
		t.Logf("the local clone did not copy the unreachable blob (%v); the check still runs", err)
	}
	g, url := e.serve(stage2)
	defer g.Close()
	c := filepath.Join(e.dir, "c")
	e.git(e.dir, "clone", "-q", url, c)
	for _, h := range []string{secret, blob} {
		out := e.gitFail(c, "fetch", "origin", h)
		wantContains(t, out, "not our ref")
	}
}

func (e *env) gitStdin(dir, stdin string, args ...string) string {
	e.t.Helper()
	cmd := execGit(e, dir, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := os.ReadFile(e.tokenFile)
	must(t, err)
	do := func(method, path, ctype, body string) (int, string) {
		req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
		must(t, err)
		req.SetBasicAuth("bottle", strings.TrimSpace(string(tok)))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		says                            string
	}{
		{"unknown service", "GET", "/info/refs?service=git-upload-archive", "", "", 403, "unsupported service"},
		{"dumb http", "GET", "/info/refs", "", "", 403, "smart HTTP"},
		{"not git", "GET", "/objects/info/packs", "", "", 404, "not found"},
		{"wrong method", "GET", "/git-upload-pack", "", "", 405, "method"},
		{"wrong content type", "POST", "/git-upload-pack", "text/plain", "0000", 415, "content type"},
		{"bad length", "POST", "/git-upload-pack", "application/x-git-upload-pack-request", "zzzzwant", 400, "malformed pkt-line"},
		{"cut packet", "POST", "/git-upload-pack", "application/x-git-upload-pack-request", "0032want 12", 400, "malformed pkt-line"},
		{"not a want", "POST", "/git-upload-pack", "application/x-git-upload-pack-request", "0009hello0000", 400, "expected want"},
		{"bad push command", "POST", "/git-receive-pack", "application/x-git-receive-pack-request", "000bgarbage0000", 400, "malformed push command"},
		{"oversized packet", "POST", "/git-receive-pack", "application/x-git-receive-pack-request", "ffff", 400, "malformed pkt-line"},
	}
	for _, c := range cases {
		status, body := do(c.method, c.path, c.ctype, c.body)
		if status != c.status || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %q, want %d and %q", c.name, status, body, c.status, c.says)
		}
	}

	// A push whose pack is garbage: a clean report, no ref.
	head := e.git(e.user, "rev-parse", "HEAD")
	cmd := fmt.Sprintf("%s %s refs/heads/bottle/b1/junk\x00report-status side-band-64k", strings.Repeat("0", 40), head)
	body := fmt.Sprintf("%04x%s0000PACK\x00\x00\x00\x02\x00\x00\x00\x05garbage", len(cmd)+4, cmd)
	status, resp := do("POST", "/git-receive-pack", "application/x-git-receive-pack-request", body)
	if status != 200 || !strings.Contains(resp, "unpack ") || !strings.Contains(resp, "ng refs/heads/bottle/b1/junk") {
		t.Errorf("garbage pack: %d %q", status, resp)
	}
	if e.stageRef("refs/heads/bottle/b1/junk") != "" {
		t.Errorf("garbage pack created a ref")
	}
	ents, _ := os.ReadDir(filepath.Join(e.stage, "objects"))
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "gate-incoming-") {
			t.Errorf("quarantine %s left behind", ent.Name())
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "gate.json")
		must(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	c, err := gate.LoadConfig(write(`{"listen":"0.0.0.0:8418","bottle":"fix-1","repo":"/stage/repo.git","token_file":"/stage/tok",
		"approvals":{"enabled":true,"timeout":"90s"}}`))
	must(t, err)
	if len(c.Push.Refs) != 1 || c.Push.Refs[0] != "refs/heads/bottle/fix-1/*" || c.Push.AllowForce || c.Push.AllowDelete || c.Push.AllowTags {
		t.Errorf("default push rules: %+v", c.Push)
	}
	if !slices.Equal(c.ProtectedPaths, protect.Defaults()) || c.MaxPackBytes != gate.DefaultMaxPackBytes || c.MaxPushedBytes != gate.DefaultMaxPushedBytes {
		t.Errorf("defaults: %+v", c)
	}
	if c.Approvals.Timeout != gate.Duration(90e9) {
		t.Errorf("timeout %v", c.Approvals.Timeout)
	}
	for _, bad := range []string{
		`{"listen":"x","bottle":"b","repo":"r","token_file":"t","tokn":"oops"}`,
		`{"listen":"x","bottle":"B A D","repo":"r","token_file":"t"}`,
		`{"listen":"x","bottle":"b","repo":"r"}`,
		`{"listen":"x","bottle":"b","repo":"r","token_file":"t","push":{"refs":["heads/x"]}}`,
		`{"listen":"x","bottle":"b","repo":"r","token_file":"t","approvals":{"timeout":"later"}}`,
		`not json`,
	} {
		if _, err := gate.LoadConfig(write(bad)); err == nil {
			t.Errorf("LoadConfig accepted %s", bad)
		}
	}
}

func TestTokenFileMustBePrivate(t *testing.T) {
	requireGit(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	must(t, os.WriteFile(tok, []byte("t"), 0o644))
	_, err := gate.New(gate.Config{Listen: "127.0.0.1:0", Bottle: "b", Repo: dir, TokenFile: tok})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("New with a world-readable token: %v", err)
	}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestPushFromShallowClone(t *testing.T) {
	e := newEnv(t, nil)
	c := e.clone("shallow-work", "--depth", "1")
	h := e.commitFile(c, "agent.txt", "from a shallow clone\n", "agent work")
	e.git(c, "push", "origin", "HEAD:refs/heads/bottle/b1/shallow")
	if got := e.stageRef("refs/heads/bottle/b1/shallow"); got != h {
		t.Fatalf("stage ref = %q, want %s", got, h)
	}
	e.git(e.stage, "fsck", "--strict")
}

// A fetch whose client has much history the gate lacks needs several
// negotiation rounds.
func TestFetchNegotiatesOverRounds(t *testing.T) {
	e := newEnv(t, nil)
	for _, v := range []string{"0", "2"} {
		c := e.clone("rounds-v"+v, "-c", "protocol.version="+v)
		cmd := exec.Command("sh", "-c", "for i in $(seq 1 80); do git commit -q --allow-empty -m local$i; done")
		cmd.Dir, cmd.Env = c, e.gitEnv(e.home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("local commits: %v\n%s", err, out)
		}
		newHead := e.commitFile(e.user, "rounds-"+v+".txt", "x\n", "host "+v)
		e.fetchHost()
		e.git(c, "-c", "protocol.version="+v, "fetch", "-q", "origin")
		if got := e.git(c, "rev-parse", "origin/main"); got != newHead {
			t.Errorf("v%s: origin/main = %s, want %s", v, got, newHead)
		}
		e.git(c, "fsck")
	}
}
