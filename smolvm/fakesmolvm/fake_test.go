package main

// These tests hold the fake to ../../shared/smolvm-cli.md: every refusal,
// output line, stream and exit code docker bottle relies on. They run the
// built binary, as docker bottle does.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

var (
	fakeBin  string
	probeBin string
)

func TestMain(m *testing.M) { os.Exit(smolvmtest.Main(m, &fakeBin, &probeBin)) }

// env is one fake smolvm "host": a state dir and extra variables.
type env struct {
	t     *testing.T
	state string
	vars  []string
}

func newEnv(t *testing.T, vars ...string) *env {
	t.Helper()
	e := &env{t: t, state: t.TempDir(), vars: vars}
	// Registered after TempDir, so it runs first: no machine (process,
	// mount) outlives the test.
	t.Cleanup(func() {
		for _, r := range e.records() {
			e.run("", "machine", "delete", "--name", r.Name, "-f")
		}
	})
	return e
}

func (e *env) records() []fakestate.Record {
	entries, _ := os.ReadDir(filepath.Join(e.state, "machines"))
	var out []fakestate.Record
	for _, de := range entries {
		if n := de.Name(); strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			if r, err := fakestate.ReadRecord(e.state, strings.TrimSuffix(n, ".json")); err == nil {
				out = append(out, r)
			}
		}
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(fakeBin, args...)
	cmd.Env = append(append(os.Environ(), fakestate.EnvState+"="+e.state, "SMOLVM_CONFIG="+filepath.Join(e.state, "no-config.toml")), e.vars...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		e.t.Fatalf("running fake smolvm %v: %v", args, err)
	}
	return r
}

// ok runs a command that must exit 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("smolvm %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func expect(t *testing.T, r result, code int, stream, want string) {
	t.Helper()
	got := r.stdout
	if stream == "stderr" {
		got = r.stderr
	}
	if r.code != code || !strings.Contains(got, want) {
		t.Errorf("want exit %d and %s containing %q; got exit %d\nstdout: %q\nstderr: %q", code, stream, want, r.code, r.stdout, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	for _, flag := range []string{"--version", "-V"} {
		r := e.ok(flag)
		if r.stdout != "smolvm "+fakestate.DefaultVersion+"\n" {
			t.Errorf("%s printed %q, want smolvm %s", flag, r.stdout, fakestate.DefaultVersion)
		}
	}
	e = newEnv(t, fakestate.EnvVersion+"=1.7.5")
	if r := e.ok("--version"); r.stdout != "smolvm 1.7.5\n" {
		t.Errorf("with %s=1.7.5: %q", fakestate.EnvVersion, r.stdout)
	}
	help := e.ok("--help").stdout
	for _, c := range []string{"\n  machine ", "\n  pack "} {
		if !strings.Contains(help, c) {
			t.Errorf("--help lacks %q:\n%s", c, help)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		args []string
		want string
	}{
		// v1.0.2: the name is a flag; a positional name is rejected.
		{[]string{"machine", "create", "bottle-x"}, "error: unexpected argument 'bottle-x' found"},
		{[]string{"machine", "delete", "bottle-x", "-f"}, "error: unexpected argument 'bottle-x' found"},
		{[]string{"machine", "start", "bottle-x"}, "error: unexpected argument 'bottle-x' found"},
		// --from conflicts with --image and --smolfile.
		{[]string{"machine", "create", "--name", "a", "--from", "x.smolmachine", "--image", "alpine"}, "error: the argument '--from <FROM>' cannot be used with '--image <IMAGE>'"},
		{[]string{"machine", "create", "--name", "a", "--image", "alpine", "--from", "x.smolmachine"}, "error: the argument '--image <IMAGE>' cannot be used with '--from <FROM>'"},
		{[]string{"machine", "create", "--name", "a", "-s", "Smolfile", "--from", "x.smolmachine"}, "cannot be used with"},
		// exec has no -n short form.
		{[]string{"machine", "exec", "-n", "a", "--", "true"}, "error: unexpected argument '-n' found"},
		{[]string{"machine", "exec", "--name", "a", "-d", "-i", "--", "true"}, "cannot be used with"},
		{[]string{"machine", "exec", "--name", "a"}, "the following required arguments were not provided"},
		// pack create: no positional image; --output required.
		{[]string{"pack", "create", "127.0.0.1:5000/x:1", "-o", "out"}, "error: unexpected argument '127.0.0.1:5000/x:1' found"},
		{[]string{"pack", "create", "--image", "127.0.0.1:5000/x:1"}, "--output <OUTPUT>"},
		{[]string{"pack", "create", "--image", "a", "--from-vm", "b", "-o", "out"}, "cannot be used with"},
		{[]string{"pack", "create", "--from-machine", "b", "-o", "out"}, "unexpected argument '--from-machine' found"},
		{[]string{"pack", "create", "--image", "a", "-o", "out", "--net"}, "unexpected argument '--net' found"},
		{[]string{"machine", "create", "--name", "a", "--bogus"}, "unexpected argument '--bogus' found"},
		{[]string{"machine", "create", "--name"}, "a value is required for '--name <NAME>'"},
	}
	for _, c := range cases {
		r := e.run("", c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "Usage: smolvm ") || r.stdout != "" {
			t.Errorf("smolvm %s: want exit 2 and stderr with %q; got exit %d\nstdout: %q\nstderr: %q",
				strings.Join(c.args, " "), c.want, r.code, r.stdout, r.stderr)
		}
	}
	if len(e.records()) != 0 {
		t.Errorf("usage errors created machines: %+v", e.records())
	}
}

func TestNameRules(t *testing.T) {
	e := newEnv(t)
	bad := map[string]string{
		"-lead":                  `machine name must start with a letter or digit (got: "-lead")`,
		"_lead":                  `machine name must start with a letter or digit (got: "_lead")`,
		"trail-":                 `machine name cannot end with a hyphen (got: "trail-")`,
		"dou--ble":               "machine name cannot contain consecutive hyphens",
		"a/b":                    "machine name cannot contain path separators",
		"a.b":                    "machine name contains invalid character: '.'",
		"a b":                    "machine name contains invalid character: ' '",
		strings.Repeat("a", 129): "machine name too long: 129 characters (max 128)",
	}
	for name, want := range bad {
		r := e.run("", "machine", "create", "--name="+name)
		expect(t, r, 1, "stderr", "Error: config operation failed: create machine: "+want)
	}
	for _, name := range []string{"a", "A9", "bottle-x_1", strings.Repeat("b", 128)} {
		e.ok("machine", "create", "--name", name)
	}
	if got := len(e.records()); got != 4 {
		t.Errorf("%d machines recorded, want 4", got)
	}
}

func TestCreateRecordsEverything(t *testing.T) {
	e := newEnv(t, "HOST_VALUE=from-host")
	vol := t.TempDir()
	r := e.ok("machine", "create", "-n", "bottle-x", "--label", "owner=docker-bottle", "--label", "dev.dockerbottle.bottle=x",
		"-e", "A=1", "--env", "B=two words", "-e", "HOST_VALUE", "-e", "A=3",
		"--allow-host", "10.231.77.2", "--allow-host", "localhost", "--allow-cidr", "10.0.0.1", "--allow-cidr", "192.168.0.0/16",
		"-v", vol+":/workspace", "--volume", vol+":/ro:ro", "-p", "8080:80", "--cpus", "2", "--mem", "1024",
		"--init", "echo hi", "-w", "/src", "--", "sleep", "infinity")
	if r.stdout != "Created machine: bottle-x\n" {
		t.Errorf("stdout %q, want %q", r.stdout, "Created machine: bottle-x\n")
	}
	rec, err := fakestate.ReadRecord(e.state, "bottle-x")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s: got %s, want %s", what, g, w)
		}
	}
	check("labels", rec.Labels, map[string]string{"owner": "docker-bottle", "dev.dockerbottle.bottle": "x"})
	check("env", rec.Env, []string{"A=1", "B=two words", "HOST_VALUE=from-host", "A=3"})
	check("allow_hosts", rec.AllowHosts, []string{"10.231.77.2", "localhost"})
	check("allow_cidrs", rec.AllowCIDRs, []string{"10.0.0.1/32", "192.168.0.0/16"})
	check("volumes", rec.Volumes, []fakestate.Volume{{Host: vol, Guest: "/workspace"}, {Host: vol, Guest: "/ro", ReadOnly: true}})
	check("workload", rec.Workload, []string{"sleep", "infinity"})
	check("ports", rec.Ports, []string{"8080:80"})
	check("init", rec.Init, []string{"echo hi"})
	check("cpus/mem", []int{rec.CPUs, rec.MemoryMiB}, []int{2, 1024})
	if !rec.Network {
		t.Error("an allowlist implies --net, but network is false")
	}

	expect(t, e.run("", "machine", "create", "--name", "bottle-x"), 1, "stderr",
		"Error: config operation failed: create machine: machine 'bottle-x' already exists or is being created\n")
	expect(t, e.run("", "machine", "create", "--name", "y", "--allow-host", "10.0.0.1:443"), 1, "stderr", "Error: config operation failed: --allow-host:")
	expect(t, e.run("", "machine", "create", "--name", "y", "--allow-cidr", "nonsense"), 1, "stderr", "Error: config operation failed: --allow-cidr:")
	expect(t, e.run("", "machine", "create", "--name", "y", "--net-backend", "tsi", "--allow-cidr", "10.0.0.1"), 1, "stderr", "Error: config operation failed: --net-backend:")
	expect(t, e.run("", "machine", "create", "--name", "y", "-v", vol+":relative"), 1, "stderr", "must be absolute")
	expect(t, e.run("", "machine", "create", "--name", "y", "--from", filepath.Join(e.state, "none.smolmachine")), 1, "stderr",
		"Error: config operation failed: create from .smolmachine: file not found: ")
	if _, err := fakestate.ReadRecord(e.state, "y"); err == nil {
		t.Error("a refused create left a record")
	}
}

func TestConcurrentCreateOneWins(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.run("", "machine", "create", "--name", "race").code
		}()
	}
	wg.Wait()
	wins := 0
	for _, c := range codes {
		if c == 0 {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent creates of one name succeeded (exit codes %v), want exactly 1", wins, codes)
	}
}

func TestLifecycleOutputs(t *testing.T) {
	e := newEnv(t)
	expect(t, e.ok("machine", "ls", "--json"), 0, "stdout", "[]")
	expect(t, e.run("", "machine", "start", "--name", "nope"), 1, "stderr", "Error: vm not found: nope")
	expect(t, e.run("", "machine", "stop", "--name", "nope"), 1, "stderr", "Error: vm not found: nope")
	expect(t, e.run("", "machine", "delete", "--name", "nope", "-f"), 1, "stderr", "Error: vm not found: nope")
	expect(t, e.run("", "machine", "data-dir", "--name", "nope"), 1, "stderr", "Error: vm not found: nope")
	expect(t, e.run("", "machine", "status", "--name", "nope", "--json"), 1, "stderr",
		"Error: config operation failed: machine status: machine 'nope' not found")
	expect(t, e.run("", "machine", "exec", "--name", "nope", "--", "true"), 1, "stderr", "Error: vm not found: nope")

	e.ok("machine", "create", "--name", "m1", "--label", "k=v")
	expect(t, e.ok("machine", "status", "-n", "m1"), 0, "stdout", "Machine 'm1': created\n")
	expect(t, e.ok("machine", "stop", "-n", "m1"), 0, "stdout", "Machine 'm1' is not running (state: created)\n")
	expect(t, e.run("", "machine", "exec", "--name", "m1", "--", "true"), 1, "stderr",
		"Error: agent operation failed: connect: machine 'm1' is not running. Start it with 'smolvm machine start --name m1'; if a start is already in progress, retry once it finishes.\n")

	// ls --json and status --json: the same documented object.
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("machine", "list", "--json").stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("ls --json: %v %v", err, list)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(e.ok("machine", "status", "--name", "m1", "--json").stdout), &one); err != nil {
		t.Fatal(err)
	}
	documented := strings.Fields(`name state cpus memory_mib pid mounts ports created_at storage_gb overlay_gb
		image entrypoint cmd ephemeral gpu gpu_vram_mib cuda forkable cuda_fork_pool_size cuda_vram_limit_mib
		forkpoint_held labels restart_policy restart_max_retries restart_count health_cmd health_interval_secs
		health_timeout_secs health_retries health_startup_grace_secs network`)
	for _, obj := range []map[string]any{list[0], one} {
		for _, k := range documented {
			if _, ok := obj[k]; !ok {
				t.Errorf("JSON object lacks %q: %v", k, obj)
			}
		}
		if len(obj) != len(documented) {
			t.Errorf("JSON object has %d fields, the contract documents %d", len(obj), len(documented))
		}
		if obj["state"] != "created" || obj["pid"] != nil || obj["labels"].(map[string]any)["k"] != "v" {
			t.Errorf("state/pid/labels: %v %v %v", obj["state"], obj["pid"], obj["labels"])
		}
	}

	dd := strings.TrimSpace(e.ok("machine", "data-dir", "-n", "m1").stdout)
	if dd != fakestate.DataDir(e.state, "m1") || !regexp.MustCompile(`/vms/[0-9a-f]{16}$`).MatchString(dd) {
		t.Errorf("data-dir %q", dd)
	}

	// delete without -f prompts on stdin: EOF or "n" cancels.
	for _, answer := range []string{"", "n\n", "no\n"} {
		r := e.run(answer, "machine", "delete", "--name", "m1")
		if r.code != 0 || r.stdout != "Cancelled\n" || !strings.Contains(r.stderr, "Delete machine 'm1'? [y/N] ") {
			t.Errorf("delete with answer %q: exit %d stdout %q stderr %q", answer, r.code, r.stdout, r.stderr)
		}
	}
	if _, err := fakestate.ReadRecord(e.state, "m1"); err != nil {
		t.Fatalf("a cancelled delete removed the machine: %v", err)
	}
	if r := e.run("y\n", "machine", "rm", "--name", "m1"); r.code != 0 || r.stdout != "Deleted machine: m1\n" {
		t.Errorf("delete answered y: %+v", r)
	}
	expect(t, e.run("", "machine", "status", "--name", "m1"), 1, "stderr", "not found")
}

// packProbe pushes the probe image and packs it; it returns the stub path.
func packProbe(t *testing.T, e *env, reg *smolvmtest.Registry, extra ...string) (string, result) {
	t.Helper()
	img, err := smolvmtest.ProbeImage(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Push(t, img, "bottle/probe:1")
	out := filepath.Join(t.TempDir(), "probe")
	args := append([]string{"pack", "create", "--image", ref, "-o", out, "--no-proxy", "127.0.0.1,localhost"}, extra...)
	return out, e.run("", args...)
}

func TestPackCreate(t *testing.T) {
	e := newEnv(t)
	reg := smolvmtest.NewRegistry(t, "")
	out, r := packProbe(t, e, reg)
	if r.code != 0 {
		t.Fatalf("pack create: %+v", r)
	}
	ref := reg.Host + "/bottle/probe:1"
	if want := "Pulling image " + ref + "... done.\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 ||
		!regexp.MustCompile(`^Packed: `+regexp.QuoteMeta(out)+` \(stub: \d+KB, total: \d+KB\)$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^Assets: `+regexp.QuoteMeta(out)+`\.smolmachine \(\d+KB compressed\)$`).MatchString(lines[1]) {
		t.Errorf("stdout %q", r.stdout)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("stub %s: %v", out, err)
	}
	m, err := fakestate.ReadManifest(out + ".smolmachine")
	if err != nil {
		t.Fatal(err)
	}
	want := smolvmtest.ProbeImageConfig
	if m.Image != ref || !strings.HasPrefix(m.Digest, "sha256:") || m.Platform != "linux/"+runtime.GOARCH ||
		m.SmolvmVersion != fakestate.DefaultVersion || m.Workdir != want.WorkingDir || m.Created == "" || m.CPUs != 4 || m.MemoryMiB != 8192 ||
		strings.Join(m.Entrypoint, " ") != "/bin/probe" || strings.Join(m.Cmd, " ") != "sleep" ||
		strings.Join(m.Env, " ") != strings.Join(want.Env, " ") {
		t.Errorf("manifest %+v", m)
	}

	// --entrypoint is one argv element; CMD is kept.
	out2, r := packProbe(t, e, reg, "--entrypoint", "/bin/probe exit", "--cpus", "2", "--mem", "512")
	if r.code != 0 {
		t.Fatalf("pack create --entrypoint: %+v", r)
	}
	if m, _ := fakestate.ReadManifest(out2 + ".smolmachine"); len(m.Entrypoint) != 1 || m.Entrypoint[0] != "/bin/probe exit" ||
		strings.Join(m.Cmd, " ") != "sleep" || m.CPUs != 2 || m.MemoryMiB != 512 {
		t.Errorf("--entrypoint manifest %+v", m)
	}

	// -o must name the stub.
	expect(t, e.run("", "pack", "create", "--image", ref, "-o", filepath.Join(t.TempDir(), "x.smolmachine")), 1, "stderr",
		"Error: config operation failed: pack create: --output names the executable stub, not the .smolmachine sidecar")

	// Registry references only.
	for _, bad := range []string{"-", "./img.tar", "/abs/img.tar", ".hidden/x", "127.0.0.1:1/x y", "a+b"} {
		r := e.run("", "pack", "create", "--image="+bad, "-o", filepath.Join(t.TempDir(), "o"))
		if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: agent operation failed: pull image:") {
			t.Errorf("pack create --image %q: exit %d stderr %q", bad, r.code, r.stderr)
		}
	}
	// A missing platform in an index.
	expect(t, e.run("", "pack", "create", "--image", ref, "-o", filepath.Join(t.TempDir(), "o"), "--oci-platform", "linux/s390x"), 1, "stderr",
		"Error: agent operation failed: pull image:")
}

func TestPackCreatePlainHTTPRule(t *testing.T) {
	e := newEnv(t)
	// 127.0.0.2 is loopback on Linux, but crane's rule does not make it
	// plain HTTP: the pull tries https and fails.
	reg := smolvmtest.NewRegistry(t, "127.0.0.2:0")
	img, err := smolvmtest.ProbeImage(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	// Push over plain HTTP explicitly (the test, not the fake, chooses).
	ref127 := smolvmtest.NewRegistry(t, "").Push(t, img, "p:1")
	r := e.run("", "pack", "create", "--image", ref127, "-o", filepath.Join(t.TempDir(), "ok"))
	if r.code != 0 {
		t.Fatalf("127.0.0.1 registry over plain HTTP: %+v", r)
	}
	// localhost:PORT is plain HTTP too.
	port := ref127[strings.LastIndexByte(ref127[:strings.IndexByte(ref127, '/')], ':')+1 : strings.IndexByte(ref127, '/')]
	if r := e.run("", "pack", "create", "--image", "localhost:"+port+"/p:1", "-o", filepath.Join(t.TempDir(), "ok2")); r.code != 0 {
		t.Errorf("localhost:PORT registry: %+v", r)
	}
	r = e.run("", "pack", "create", "--image", reg.Host+"/p:1", "-o", filepath.Join(t.TempDir(), "no"))
	if r.code != 1 || !strings.Contains(r.stderr, "Error: agent operation failed: pull image: crane manifest failed:") {
		t.Errorf("127.0.0.2 registry: want an https failure, got %+v", r)
	}
}

func TestPackCreateCredentials(t *testing.T) {
	e := newEnv(t)
	reg := smolvmtest.NewRegistry(t, "", smolvmtest.WithBasicAuth("bottle", "s3cret"))
	img, err := smolvmtest.ProbeImage(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Push(t, img, "private/probe:1")

	r := e.run("", "pack", "create", "--image", ref, "-o", filepath.Join(t.TempDir(), "a"))
	if r.code != 1 || !strings.Contains(r.stderr, "Error: agent operation failed: pull image: crane manifest failed:") {
		t.Errorf("without credentials: %+v", r)
	}
	// smolvm does not read ~/.docker/config.json.
	dockerCfg := t.TempDir()
	os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"username":"bottle","password":"s3cret"}}}`, reg.Host)), 0o600)
	e.vars = append(e.vars, "DOCKER_CONFIG="+dockerCfg, "HOME="+dockerCfg)
	if r := e.run("", "pack", "create", "--image", ref, "-o", filepath.Join(t.TempDir(), "b")); r.code != 1 {
		t.Errorf("docker credentials were used: %+v", r)
	}

	cfg := filepath.Join(t.TempDir(), "config.toml")
	for _, c := range []struct {
		toml string
		vars []string
		code int
	}{
		{fmt.Sprintf("[images.registries.%q]\nusername = \"bottle\"\npassword_env = \"BOTTLE_REG_PW\"\n", reg.Host), []string{"BOTTLE_REG_PW=s3cret"}, 0},
		{fmt.Sprintf("[images.registries.%q]\nusername = \"bottle\"\npassword = \"s3cret\"\n", reg.Host), nil, 0},
		{fmt.Sprintf("[images.registries.%q]\nusername = \"bottle\"\npassword_env = \"BOTTLE_REG_PW\"\n", reg.Host), []string{"BOTTLE_REG_PW=wrong"}, 1},
		{fmt.Sprintf("[images.registries.%q]\nusername = \"bottle\"\npassword_env = \"BOTTLE_REG_PW_UNSET\"\n", reg.Host), nil, 1},
		{"[images.registries.\"other:5000\"]\nusername = \"bottle\"\npassword = \"s3cret\"\n", nil, 1},
	} {
		if err := os.WriteFile(cfg, []byte(c.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		ce := &env{t: t, state: e.state, vars: append([]string{}, c.vars...)}
		cmd := []string{"pack", "create", "--image", ref, "-o", filepath.Join(t.TempDir(), "c")}
		ce.vars = append(ce.vars, "SMOLVM_CONFIG="+cfg) // later than the default no-config
		if r := ce.run("", cmd...); r.code != c.code {
			t.Errorf("config %q with %v: exit %d, want %d\n%s", c.toml, c.vars, r.code, c.code, r.stderr)
		}
	}
}

func TestMachineFromArtifact(t *testing.T) {
	e := newEnv(t)
	reg := smolvmtest.NewRegistry(t, "")
	out, r := packProbe(t, e, reg)
	if r.code != 0 {
		t.Fatalf("pack: %+v", r)
	}
	vol, roVol := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(roVol, "seed"), []byte("seed\n"), 0o644)
	e.ok("machine", "create", "--name", "b1", "--from", out+".smolmachine", "-e", "SHARED=create", "-e", "CREATE_ONLY=create",
		"-w", "/ignored", "--cpus", "4", "-v", vol+":/vol", "-v", roVol+":/ro:ro", "--allow-host", "127.0.0.1",
		"--", "/bin/probe", "workload", "/vol/workload.pid")
	rec, err := fakestate.ReadRecord(e.state, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Manifest == nil || rec.Image != reg.Host+"/bottle/probe:1" || rec.CPUs != 4 {
		t.Errorf("record from artifact: %+v", rec)
	}

	r = e.ok("machine", "start", "--name", "b1")
	m := regexp.MustCompile(`^Machine 'b1' running \(PID: (\d+)\)\n$`).FindStringSubmatch(r.stdout)
	if m == nil || r.stderr != "Starting machine 'b1'...\n" {
		t.Fatalf("start: stdout %q stderr %q", r.stdout, r.stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	expect(t, e.ok("machine", "start", "--name", "b1"), 0, "stdout", fmt.Sprintf("Machine 'b1' already running (PID: %d)", pid))
	expect(t, e.ok("machine", "status", "--name", "b1"), 0, "stdout", fmt.Sprintf("Machine 'b1': running (PID: %d)", pid))
	var st map[string]any
	json.Unmarshal([]byte(e.ok("machine", "status", "--name", "b1", "--json").stdout), &st)
	if st["state"] != "running" || st["pid"] != float64(pid) || st["mounts"] != float64(2) || st["network"] != true {
		t.Errorf("status --json: %v", st)
	}

	// The workload (after --) runs detached from the image's root.
	wpid := testio.WaitPID(t, filepath.Join(vol, "workload.pid"))

	// exec: exit codes are the guest command's.
	for _, code := range []int{0, 1, 7, 255} {
		r := e.run("", "machine", "exec", "--name", "b1", "--", "/bin/probe", "exit", strconv.Itoa(code))
		if r.code != code || r.stderr != "" {
			t.Errorf("exec exit %d: got %+v", code, r)
		}
	}
	// A signal gives 128+n; --timeout gives 124.
	if r := e.run("", "machine", "exec", "--name", "b1", "--", "probe", "kill-self", "15"); r.code != 143 {
		t.Errorf("killed by SIGTERM: exit %d, want 143", r.code)
	}
	if r := e.run("", "machine", "exec", "--name", "b1", "--timeout", "200ms", "--", "probe", "sleep"); r.code != 124 {
		t.Errorf("--timeout: exit %d, want 124", r.code)
	}
	// PATH from the image finds probe-link (a symlink in /usr/local/bin).
	if r := e.run("", "machine", "exec", "--name", "b1", "--", "probe-link", "exit", "5"); r.code != 5 {
		t.Errorf("PATH lookup: %+v", r)
	}
	expect(t, e.run("", "machine", "exec", "--name", "b1", "--", "no-such-tool"), 1, "stderr", "Error: agent operation failed: exec:")

	// Env: image ENV, then the record env (create -e), then exec -e; the
	// last wins.
	envOut := e.ok("machine", "exec", "--name", "b1", "-e", "EXEC_ONLY=exec", "--", "probe", "env").stdout
	envMap := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(envOut), "\n") {
		k, v, _ := strings.Cut(l, "=")
		envMap[k] = v
	}
	for k, v := range map[string]string{"SHARED": "create", "CREATE_ONLY": "create", "IMAGE_ONLY": "image", "EXEC_ONLY": "exec", "PATH": "/usr/local/bin:/bin"} {
		if envMap[k] != v {
			t.Errorf("exec env %s=%q, want %q (env: %v)", k, envMap[k], v, envMap)
		}
	}
	if got := e.ok("machine", "exec", "--name", "b1", "-e", "SHARED=exec", "--", "probe", "env").stdout; !strings.Contains(got, "SHARED=exec\n") {
		t.Errorf("exec -e does not win: %s", got)
	}
	// Workdir: the manifest's (create -w is ignored with --from); exec -w wins.
	expect(t, e.ok("machine", "exec", "--name", "b1", "--", "probe", "pwd"), 0, "stdout", "/work\n")
	expect(t, e.ok("machine", "exec", "--name", "b1", "-w", "/tmp", "--", "probe", "pwd"), 0, "stdout", "/tmp\n")
	// Merged layers: the whiteout removed /old/gone, the second layer's file is there.
	if r := e.run("", "machine", "exec", "--name", "b1", "--", "probe", "cat", "/old/gone"); r.code != 3 {
		t.Errorf("whiteout not applied: %+v", r)
	}
	expect(t, e.ok("machine", "exec", "--name", "b1", "--", "probe", "cat", "/etc/probe-release"), 0, "stdout", "probe 1\n")
	// stdin only with -i.
	if r := e.run("piped\n", "machine", "exec", "--name", "b1", "-i", "--", "probe", "stdin"); r.stdout != "piped\n" {
		t.Errorf("exec -i stdin: %+v", r)
	}
	if r := e.run("piped\n", "machine", "exec", "--name", "b1", "--", "probe", "stdin"); r.stdout != "" {
		t.Errorf("exec without -i read stdin: %+v", r)
	}
	r = e.ok("machine", "exec", "--name", "b1", "--", "probe", "say", "to-out", "to-err")
	if r.stdout != "to-out\n" || r.stderr != "to-err\n" {
		t.Errorf("exec streams: %+v", r)
	}
	// Volumes: shared both ways, read-only enforced.
	e.ok("machine", "exec", "--name", "b1", "--", "probe", "write", "/vol/from-guest", "hello")
	if b, _ := os.ReadFile(filepath.Join(vol, "from-guest")); string(b) != "hello" {
		t.Errorf("volume write not visible on the host: %q", b)
	}
	expect(t, e.ok("machine", "exec", "--name", "b1", "--", "probe", "cat", "/ro/seed"), 0, "stdout", "seed\n")
	if r := e.run("", "machine", "exec", "--name", "b1", "--", "probe", "write", "/ro/x", "y"); r.code != 3 {
		t.Errorf("write to a :ro volume: %+v", r)
	}
	// -t gives the command a terminal; without it, none.
	if r := e.ok("machine", "exec", "--name", "b1", "-t", "--", "probe", "isatty"); !strings.Contains(r.stdout, "stdin=true stdout=true stderr=true") {
		t.Errorf("exec -t: %q", r.stdout)
	}
	// The guest has a /dev of its own, terminals included.
	expect(t, e.ok("machine", "exec", "--name", "b1", "--", "probe", "write", "/dev/null", "x"), 0, "stdout", "")
	if fi, err := os.Stat(filepath.Join(fakestate.RootfsDir(e.state, "b1"), "dev", "null")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the guest's /dev/null is not a device: %v", err)
	}
	// Terminals: /dev/ptmx is the ptmx of the devpts mounted at /dev/pts.
	devDir := filepath.Join(fakestate.RootfsDir(e.state, "b1"), "dev")
	if l, err := os.Readlink(filepath.Join(devDir, "ptmx")); err != nil || l != "pts/ptmx" {
		t.Errorf("the guest's /dev/ptmx: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(devDir, "pts", "ptmx")); err != nil {
		t.Errorf("no devpts at the guest's /dev/pts: %v", err)
	}
	if r := e.ok("machine", "exec", "--name", "b1", "--", "probe", "isatty"); r.stdout != "stdin=false stdout=false stderr=false\n" {
		t.Errorf("exec without -t: %q", r.stdout)
	}
	if r := e.run("", "machine", "exec", "--name", "b1", "-it", "--", "probe", "exit", "9"); r.code != 9 {
		t.Errorf("exec -it exit code: %+v", r)
	}
	// -d prints the PID.
	if r := e.ok("machine", "exec", "--name", "b1", "-d", "--", "probe", "exit", "0"); !regexp.MustCompile(`^\d+\n$`).MatchString(r.stdout) {
		t.Errorf("exec -d: %q", r.stdout)
	}

	// A process exec -d started (a session of its own) ends with the VM.
	r = e.ok("machine", "exec", "--name", "b1", "-d", "--", "probe", "sleep")
	dpid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("exec -d: %q", r.stdout)
	}

	expect(t, e.ok("machine", "stop", "--name", "b1"), 0, "stdout", "Stopped machine: b1\n")
	testio.WaitGone(t, pid, 10*time.Second)
	testio.WaitGone(t, wpid, 10*time.Second)
	testio.WaitGone(t, dpid, 10*time.Second)
	if mps := mountsUnder(fakestate.DataDir(e.state, "b1")); len(mps) != 0 {
		t.Errorf("volumes still mounted after stop: %v", mps)
	}
	expect(t, e.ok("machine", "status", "--name", "b1"), 0, "stdout", "Machine 'b1': stopped\n")
	expect(t, e.ok("machine", "stop", "--name", "b1"), 0, "stdout", "Machine 'b1' is not running (state: stopped)\n")

	// A second start reuses the extracted root and launches the workload again.
	os.Remove(filepath.Join(vol, "workload.pid"))
	pid2 := startPID(t, e, "b1")
	testio.WaitPID(t, filepath.Join(vol, "workload.pid"))
	expect(t, e.ok("machine", "delete", "--name", "b1", "-f"), 0, "stdout", "Deleted machine: b1\n")
	testio.WaitGone(t, pid2, 10*time.Second)
	if _, err := os.Stat(fakestate.DataDir(e.state, "b1")); !os.IsNotExist(err) {
		t.Errorf("data dir left after delete: %v", err)
	}
	// The volumes' host directories survive the delete.
	if b, _ := os.ReadFile(filepath.Join(vol, "from-guest")); string(b) != "hello" {
		t.Errorf("delete touched a volume's host directory")
	}
	if b, _ := os.ReadFile(filepath.Join(roVol, "seed")); string(b) != "seed\n" {
		t.Errorf("delete touched a read-only volume's host directory")
	}
}

func TestKVMSimulation(t *testing.T) {
	for mode, want := range map[string]string{"missing": "kvm not available: ", "denied": "kvm permission denied: ",
		"noboot": "KVM_EXIT_INTERNAL_ERROR"} {
		e := newEnv(t, fakestate.EnvKVM+"="+mode)
		e.ok("machine", "create", "--name", "k")
		// machine start and run wrap the error; pack create does not.
		expect(t, e.run("", "machine", "start", "--name", "k"), 1, "stderr", "Error: agent operation failed: start machine: ")
		expect(t, e.run("", "machine", "start", "--name", "k"), 1, "stderr", want)
		expect(t, e.run("", "machine", "run", "--image", t.TempDir(), "--", "/x"), 1, "stderr", want)
		if mode != "noboot" {
			expect(t, e.run("", "pack", "create", "--image", "127.0.0.1:1/x:1", "-o", filepath.Join(t.TempDir(), "o")), 1, "stderr", "Error: "+want)
		}
	}
}

func startPID(t *testing.T, e *env, name string) int {
	t.Helper()
	r := e.ok("machine", "start", "--name", name)
	m := regexp.MustCompile(`running \(PID: (\d+)\)`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("start: %q", r.stdout)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}
