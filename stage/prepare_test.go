package stage

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
)

func options(t *testing.T, backend, mode string) Options {
	t.Helper()
	dirs := Dirs{State: filepath.Join(t.TempDir(), "state"), Cache: t.TempDir()}
	s, err := spec.Parse("bottle.yaml", []byte("agent:\n  env:\n    LANG: C.UTF-8\n"))
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Spec:      s.Resolve(spec.Defaults{Command: []string{"claude"}}),
		Workspace: "/src/My Repo",
		Prompt:    "fix it",
		Provider:  plan.Provider{Name: "claude", PromptMode: "append-system-prompt-file", Dockerfile: "builtin:claude"},
		Choice:    plan.Choice{Backend: backend, NetworkMode: mode, Why: "test"},
		Dirs:      dirs,
		Allocator: &Allocator{Pool: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, Dir: dirs.Subnets(), Routes: routes()},
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestPrepareSmolvmBridge(t *testing.T) {
	o := options(t, "smolvm", "bridge")
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Slug != "my-repo" || p.Smolvm == nil || p.Docker != nil {
		t.Fatalf("plan %+v", p)
	}
	if p.Smolvm.MachineName != "bottle-my-repo" || p.Bundle.IP.String() != "10.9.0.2" || p.Bundle.Gateway.String() != "10.9.0.1" {
		t.Errorf("names/addresses: %+v %+v", p.Smolvm, p.Bundle)
	}
	if !slices.Equal(p.Smolvm.AllowHosts, []string{"10.9.0.2"}) {
		t.Errorf("allowlist %v", p.Smolvm.AllowHosts)
	}
	if p.Endpoints == nil || p.Endpoints.AgentProxyURL != "http://10.9.0.2:3128" || p.Endpoints.AgentGitGateHost != "10.9.0.2:8418" {
		t.Errorf("endpoints %+v", p.Endpoints)
	}
	env := strings.Join(p.Smolvm.GuestEnv, "\n")
	for _, want := range []string{"HTTPS_PROXY=http://10.9.0.2:3128", "NO_PROXY=10.9.0.2", "GIT_CONFIG_COUNT=2",
		"NODE_EXTRA_CA_CERTS=" + plan.GuestCAFile, "LANG=C.UTF-8", "BOTTLE_BRANCH=bottle/my-repo/work",
		// Every tool's own CA variable names the bundle (system roots plus
		// the bottle CA).
		"SSL_CERT_FILE=" + plan.GuestCABundle, "GIT_SSL_CAINFO=" + plan.GuestCABundle, "REQUESTS_CA_BUNDLE=" + plan.GuestCABundle,
		"CURL_CA_BUNDLE=" + plan.GuestCABundle, "PIP_CERT=" + plan.GuestCABundle, "AWS_CA_BUNDLE=" + plan.GuestCABundle,
		"DENO_CERT=" + plan.GuestCABundle, "CARGO_HTTP_CAINFO=" + plan.GuestCABundle} {
		if !strings.Contains(env, want) {
			t.Errorf("guest env lacks %q:\n%s", want, env)
		}
	}
	if mode(t, p.StageDir) != 0o700 {
		t.Errorf("stage dir mode %v", mode(t, p.StageDir))
	}
	// The operator token is minted when the bundle starts, and kept out of
	// the stage dir, which the bundle mounts.
	if _, err := os.Stat(p.OperatorTokenFile); !errors.Is(err, fs.ErrNotExist) || strings.HasPrefix(p.OperatorTokenFile, p.StageDir+"/") {
		t.Errorf("operator token at prepare: %s: %v", p.OperatorTokenFile, err)
	}
	op, err := WriteOperatorToken(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.OperatorTokenFile, p.AgentTokenFile, filepath.Join(p.StageDir, PlanFile)} {
		if m := mode(t, f); m != 0o600 {
			t.Errorf("%s mode %v", f, m)
		}
	}
	// What the bottle reads is readable by its user, whichever it is; the
	// stage dir around it keeps other host users out.
	for _, f := range []string{p.PromptFile, filepath.Join(p.StageDir, GuestToken), filepath.Join(p.StageDir, GuestDir)} {
		if m := mode(t, f); m&0o004 == 0 || m&0o002 != 0 {
			t.Errorf("%s mode %v", f, m)
		}
	}
	if data, _ := os.ReadFile(p.PromptFile); string(data) != "fix it" {
		t.Errorf("prompt file %q", data)
	}
	tok, _ := os.ReadFile(p.AgentTokenFile)
	if onDisk, _ := os.ReadFile(p.OperatorTokenFile); len(tok) != 26 || string(tok) == op || string(onDisk) != op {
		t.Errorf("tokens %d bytes, equal=%v, operator's on disk %v", len(tok), string(tok) == op, string(onDisk) == op)
	}
	// Each start mints another.
	if again, err := WriteOperatorToken(p); err != nil || again == op || len(again) != 26 {
		t.Errorf("a second operator token %q (%v), the first %q", again, err, op)
	}
	// No token value anywhere in the saved plan or the guest env.
	saved, _ := os.ReadFile(filepath.Join(p.StageDir, PlanFile))
	if strings.Contains(string(saved), string(tok)) || strings.Contains(env, string(tok)) || strings.Contains(string(saved), string(op)) {
		t.Error("a token value leaked into the plan")
	}
	back, err := At(p.StageDir).Load()
	if err != nil || back.Slug != p.Slug || back.Bundle.IP != p.Bundle.IP || back.Smolvm.MachineName != p.Smolvm.MachineName {
		t.Errorf("Load: %+v %v", back, err)
	}

	// The name is taken now: a second prepare derives another one and
	// another subnet.
	p2, err := Prepare(context.Background(), o)
	if err != nil || p2.Slug != "my-repo-2" || p2.Bundle.Subnet == p.Bundle.Subnet {
		t.Fatalf("second prepare: %s %s %v", p2.Slug, p2.Bundle.Subnet, err)
	}
}

func TestPrepareLoopbackCompletesAfterBringUp(t *testing.T) {
	p, err := Prepare(context.Background(), options(t, "smolvm", "loopback"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Endpoints != nil || p.Smolvm.GuestEnv != nil {
		t.Fatal("loopback endpoints are known only after bring-up")
	}
	if !slices.Equal(p.Smolvm.AllowHosts, []string{plan.SmolvmGateway}) {
		t.Errorf("allowlist %v", p.Smolvm.AllowHosts)
	}
	q := p.WithEndpoints(plan.HostPorts{Proxy: 40001, Gate: 40002, Supervise: 40003})
	if p.Endpoints != nil || p.Smolvm.GuestEnv != nil {
		t.Fatal("WithEndpoints changed its receiver")
	}
	if q.Endpoints.AgentProxyURL != "http://100.96.0.1:40001" || q.Endpoints.HostGitGate != "127.0.0.1:40002" {
		t.Errorf("endpoints %+v", q.Endpoints)
	}
	if !slices.Contains(q.Smolvm.GuestEnv, "HTTPS_PROXY=http://100.96.0.1:40001") {
		t.Errorf("guest env %v", q.Smolvm.GuestEnv)
	}
}

func TestPrepareDockerSplitsSubnet(t *testing.T) {
	p, err := Prepare(context.Background(), options(t, "docker", plan.NetworkInternal))
	if err != nil {
		t.Fatal(err)
	}
	if p.Bundle.Subnet.String() != "10.9.0.0/25" || p.Bundle.IP.String() != "10.9.0.2" ||
		p.Bundle.InternalSubnet.String() != "10.9.0.128/25" || p.Bundle.InternalIP.String() != "10.9.0.130" {
		t.Errorf("bundle %+v", p.Bundle)
	}
	if p.Docker.Container != "bottle-my-repo-agent" || p.Endpoints.AgentProxyURL != "http://10.9.0.130:3128" {
		t.Errorf("docker %+v %+v", p.Docker, p.Endpoints)
	}
}

func TestPrepareDryRunWritesNothing(t *testing.T) {
	o := options(t, "smolvm", "bridge")
	o.DryRun = true
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Slug == "" || !p.Bundle.IP.IsValid() {
		t.Fatalf("dry-run plan incomplete: %+v", p)
	}
	if _, err := os.Stat(o.Dirs.State); !os.IsNotExist(err) {
		t.Fatalf("dry run touched the state dir: %v", err)
	}
}

func TestPrepareFailureRemovesWhatItMade(t *testing.T) {
	o := options(t, "smolvm", "bridge")
	o.Allocator.Pool = []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}
	o.Allocator.Routes = routes("10.9.0.0/16") // nothing free
	if _, err := Prepare(context.Background(), o); err == nil {
		t.Fatal("prepare succeeded without a subnet")
	}
	entries, _ := os.ReadDir(o.Dirs.Bottles())
	if len(entries) != 0 {
		t.Fatalf("a failed prepare left %d stage dirs", len(entries))
	}
}

// TestPrepareSkipsNamesInUseElsewhere: a name that bottles of another
// state dir hold on the engine is skipped like one of this state dir; an
// explicit one is refused.
func TestPrepareSkipsNamesInUseElsewhere(t *testing.T) {
	o := options(t, "docker", "")
	var asked []string
	o.InUse = func(slug string) bool {
		asked = append(asked, slug)
		return slug == "my-repo"
	}
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Slug != "my-repo-2" || p.Docker.Container != "bottle-my-repo-2-agent" || !slices.Equal(asked, []string{"my-repo", "my-repo-2"}) {
		t.Errorf("slug %q, container %q, asked %v", p.Slug, p.Docker.Container, asked)
	}
	o.NameFlag = "my-repo"
	if _, err := Prepare(context.Background(), o); err == nil || !strings.Contains(err.Error(), `a bottle named "my-repo" already exists`) {
		t.Errorf("an explicit name in use elsewhere: %v", err)
	}
}

// TestPrepareConcurrentDefaultNames: many bottles of one repository
// prepared at once all get a name (the repository's, numbered) and a
// subnet of their own; none fails because another took its name first.
func TestPrepareConcurrentDefaultNames(t *testing.T) {
	const n = 16
	o := options(t, "docker", plan.NetworkInternal)
	plans := make([]plan.Plan, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plans[i], errs[i] = Prepare(context.Background(), o)
		}()
	}
	wg.Wait()
	names := map[string]bool{}
	subnets := map[netip.Prefix]bool{}
	for i, p := range plans {
		if errs[i] != nil {
			t.Errorf("prepare #%d: %v", i, errs[i])
			continue
		}
		if names[p.Slug] || subnets[p.Bundle.Reserved] {
			t.Errorf("name %s or subnet %s given twice", p.Slug, p.Bundle.Reserved)
		}
		names[p.Slug], subnets[p.Bundle.Reserved] = true, true
		if p.Slug != "my-repo" && !strings.HasPrefix(p.Slug, "my-repo-") {
			t.Errorf("default name %q is not the repository's", p.Slug)
		}
	}
}
