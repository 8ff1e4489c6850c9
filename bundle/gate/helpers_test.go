package gate_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-bottle/docker-bottle/bundle/gate"
	"github.com/docker-bottle/docker-bottle/gitstage"
)

// env is a user repository, the stage repository made from it with
// gitstage, and a gate serving it on loopback, driven by the real git.
type env struct {
	t         *testing.T
	dir       string
	home      string // HOME whose .gitconfig hands git the token
	user      string
	stage     string
	tokenFile string
	auditFile string
	url       string
	gate      *gate.Gate
}

const testBottle = "b1"

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("these tests drive the real git client, which is not installed: %v (apt-get install git)", err)
	}
}

func newEnv(t *testing.T, mutate func(*gate.Config), opts ...gate.Option) *env {
	t.Helper()
	requireGit(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, home: filepath.Join(dir, "home"), user: filepath.Join(dir, "user"),
		stage: filepath.Join(dir, "stage", "repo.git"), tokenFile: filepath.Join(dir, "stage", "gate-token"),
		auditFile: filepath.Join(dir, "stage", "audit.jsonl")}
	must(t, os.MkdirAll(e.home, 0o700))
	must(t, os.MkdirAll(filepath.Dir(e.stage), 0o700))
	must(t, os.WriteFile(e.tokenFile, []byte("tok-"+strings.ReplaceAll(t.Name(), "/", "-")+"-s3cret\n"), 0o600))
	e.writeGitConfig(e.home, e.tokenFile)

	must(t, os.MkdirAll(e.user, 0o755))
	e.git(e.user, "init", "-q")
	for i := 0; i < 12; i++ {
		e.commitFile(e.user, "src/file"+string(rune('a'+i%4))+".txt", strings.Repeat("line\n", i+1)+"v"+string(rune('a'+i))+"\n", "commit "+string(rune('a'+i)))
	}
	e.git(e.user, "tag", "-a", "v1", "-m", "release 1")
	e.git(e.user, "tag", "light", "HEAD~2")
	e.git(e.user, "branch", "feature", "HEAD~4")
	e.git(e.user, "gc", "-q")
	e.commitFile(e.user, "loose.txt", "a loose object\n", "after gc")

	must(t, gitstage.Prepare(context.Background(), e.user, e.stage))

	cfg := gate.Config{Listen: "127.0.0.1:0", Bottle: testBottle, Repo: e.stage, TokenFile: e.tokenFile, AuditFile: e.auditFile}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := gate.New(cfg, opts...)
	must(t, err)
	e.gate = g
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; g.Close() })
	e.url = "http://" + ln.Addr().String() + "/org/project.git"
	return e
}

// writeGitConfig gives git an identity and a credential helper that reads
// the token from its file: the token is never on a command line or in a
// URL.
func (e *env) writeGitConfig(home, tokenFile string) {
	cfg := `[user]
	name = Test
	email = test@example.com
[init]
	defaultBranch = main
[advice]
	detachedHead = false
[credential]
	helper = "!f() { test \"$1\" = get && echo username=bottle && echo password=$(cat '` + tokenFile + `'); }; f"
`
	must(e.t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o600))
}

func (e *env) gitEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
}

// run runs git in dir with HOME home and returns its combined output.
func (e *env) run(home, dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = e.gitEnv(home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) git(dir string, args ...string) string {
	e.t.Helper()
	out, err := e.run(e.home, dir, args...)
	if err != nil {
		e.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// gitFail runs git expecting it to fail and returns its output.
func (e *env) gitFail(dir string, args ...string) string {
	e.t.Helper()
	out, err := e.run(e.home, dir, args...)
	if err == nil {
		e.t.Fatalf("git %s succeeded, want failure:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func (e *env) commitFile(repo, name, content, msg string) string {
	e.t.Helper()
	p := filepath.Join(repo, filepath.FromSlash(name))
	must(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(e.t, os.WriteFile(p, []byte(content), 0o644))
	e.git(repo, "add", "-A")
	e.git(repo, "commit", "-q", "-m", msg)
	return e.git(repo, "rev-parse", "HEAD")
}

// fetchHost brings the user's new branches and tags into the stage
// repository, as a new bottle's gitstage.Prepare would have them, leaving
// the bottle's own branches alone.
func (e *env) fetchHost() {
	e.t.Helper()
	e.git(e.stage, "-c", "gc.auto=0", "fetch", "-q", "--no-write-fetch-head", e.user,
		"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "^refs/heads/bottle/*")
}

func (e *env) clone(name string, args ...string) string {
	e.t.Helper()
	dst := filepath.Join(e.dir, name)
	e.git(e.dir, append(append([]string{"clone", "-q"}, args...), e.url, dst)...)
	return dst
}

func (e *env) stageRef(ref string) string {
	out, err := e.run(e.home, e.stage, "rev-parse", "-q", "--verify", ref)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

func (e *env) hasObject(h string) bool {
	_, err := e.run(e.home, e.stage, "cat-file", "-e", h)
	return err == nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantContains(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func execGit(e *env, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = e.gitEnv(e.home)
	return cmd
}

// serve starts another gate on repoDir with the env's token.
func (e *env) serve(repoDir string) (*gate.Gate, string) {
	e.t.Helper()
	g, err := gate.New(gate.Config{Listen: "127.0.0.1:0", Bottle: testBottle, Repo: repoDir, TokenFile: e.tokenFile})
	must(e.t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	go g.Serve(ctx, ln)
	return g, "http://" + ln.Addr().String() + "/repo.git"
}
