package smolvm_test

// The package's calls run against the contract fake (smolvm/fakesmolvm),
// built once in TestMain.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
	"github.com/docker-bottle/docker-bottle/smolvm"
	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
	"github.com/docker-bottle/docker-bottle/smolvm/smolvmtest"
)

var (
	fakeBin  string
	probeBin string
)

func TestMain(m *testing.M) { os.Exit(smolvmtest.Main(m, &fakeBin, &probeBin)) }

// newCLI returns a CLI on the fake with its own state dir; every machine
// left at the end of the test is deleted.
func newCLI(t *testing.T, env ...string) (*smolvm.CLI, string) {
	t.Helper()
	state := t.TempDir()
	env = append([]string{fakestate.EnvState + "=" + state, "SMOLVM_CONFIG=" + filepath.Join(state, "none.toml")}, env...)
	c := smolvm.New(fakeBin, smolvm.WithEnv(env...), smolvm.WithGracePeriod(2*time.Second))
	t.Cleanup(func() {
		ms, err := c.MachineList(context.Background())
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, m := range ms {
			if err := c.MachineDelete(context.Background(), m.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return c, state
}

func TestLookup(t *testing.T) {
	t.Setenv(smolvm.EnvBinary, fakeBin)
	if p, err := smolvm.Lookup(); err != nil || p != fakeBin {
		t.Errorf("Lookup with %s set: %q, %v", smolvm.EnvBinary, p, err)
	}
	notExec := filepath.Join(t.TempDir(), "smolvm")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for _, bad := range []string{notExec, filepath.Dir(notExec), filepath.Join(t.TempDir(), "missing")} {
		t.Setenv(smolvm.EnvBinary, bad)
		if _, err := smolvm.Lookup(); !errors.Is(err, smolvm.ErrNotFound) || !strings.Contains(err.Error(), smolvm.EnvBinary) {
			t.Errorf("Lookup with %s=%s: %v", smolvm.EnvBinary, bad, err)
		}
	}
	t.Setenv(smolvm.EnvBinary, "")
	t.Setenv("PATH", filepath.Dir(fakeBin))
	if p, err := smolvm.Lookup(); err != nil || p != fakeBin {
		t.Errorf("Lookup on PATH: %q, %v", p, err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := smolvm.Lookup()
	if !errors.Is(err, smolvm.ErrNotFound) || !strings.Contains(err.Error(), "install smolvm") {
		t.Errorf("Lookup with no smolvm: %v", err)
	}
}

func TestVersionGates(t *testing.T) {
	for _, c := range []struct {
		version string
		warn    string
		err     error
	}{
		{"1.32.2", "", nil},
		{"1.14.2", "", nil},
		{"1.32.3", "newer than 1.32.2", nil},
		{"2.0.0", "newer than 1.32.2", nil},
		{"1.14.1", "runs as root", nil},
		{"1.9.3", "runs as root", nil},
		{"1.8.1", "runs as root", nil},
		{"1.8.0", "", smolvm.ErrTooOld},
		{"1.7.5", "", smolvm.ErrTooOld},
		{"0.8.0", "", smolvm.ErrTooOld},
	} {
		cli, _ := newCLI(t, fakestate.EnvVersion+"="+c.version)
		v, err := cli.Version(context.Background())
		if err != nil {
			t.Fatalf("Version for %s: %v", c.version, err)
		}
		if v.String() != c.version || v.Raw != "smolvm "+c.version {
			t.Errorf("Version = %v (%q), want %s", v, v.Raw, c.version)
		}
		warn, err := v.Check()
		if !errors.Is(err, c.err) || (c.warn == "") != (warn == "") || !strings.Contains(warn, c.warn) {
			t.Errorf("%s.Check() = %q, %v; want warning with %q, error %v", c.version, warn, err, c.warn, c.err)
		}
		why := "loses its files' owners"
		if c.version < "1.8.0" {
			why = "no egress restriction"
		}
		if err != nil && !strings.Contains(err.Error(), why) {
			t.Errorf("the too-old error for %s does not say why (%q): %v", c.version, why, err)
		}
	}
	if smolvm.MinVersion.String() != "1.8.1" || smolvm.RecommendedVersion.String() != "1.14.2" || smolvm.CheckedVersion.String() != "1.32.2" {
		t.Errorf("gates: %v %v %v", smolvm.MinVersion, smolvm.RecommendedVersion, smolvm.CheckedVersion)
	}
}

func TestParseVersion(t *testing.T) {
	good := map[string]string{"smolvm 1.9.3\n": "1.9.3", "smolvm 10.20.30": "10.20.30"}
	for in, want := range good {
		if v, err := smolvm.ParseVersion(in); err != nil || v.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v", in, v, err)
		}
	}
	for _, in := range []string{"", "1.9.3", "smolvm v1.9.3", "smolvm 1.9", "smolvm-bin 1.9.3", "smolvm 1.9.3-rc1"} {
		if _, err := smolvm.ParseVersion(in); !errors.Is(err, smolvm.ErrBadVersion) {
			t.Errorf("ParseVersion(%q): %v, want ErrBadVersion", in, err)
		}
	}
}

// script writes an executable shell script standing in for another program
// called smolvm.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smolvm")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersionRecognisesCelestoSmolVM(t *testing.T) {
	cases := map[string]string{
		// Current click CLI: same version shape as ours, told apart by --help.
		"click": `case "$1" in
--version|-V) echo "smolvm 0.0.10";;
--help|-h) printf 'Usage: smolvm [OPTIONS] COMMAND [ARGS]...\n\n  Create, manage, and connect to disposable sandboxes for AI agents.\n\nOptions:\n  -V, --version  Show the version and exit.\n  -h, --help     Show this message and exit.\n\nCommands:\n  sandbox  Create, inspect, connect to, and delete sandboxes.\n  setup    Install or validate local runtime dependencies.\n  doctor   Check whether this machine can run sandboxes.\n';;
esac`,
		// Older argparse CLI: no --version at all.
		"argparse": `echo "usage: smolvm [-h] {cleanup,doctor,ui,list,create,ssh,env} ..." >&2
echo "smolvm: error: unrecognized arguments: --version" >&2
exit 2`,
		// A PEP 440 pre-release.
		"prerelease": `echo "smolvm 0.1.0rc1"`,
	}
	for name, body := range cases {
		cli := smolvm.New(script(t, body))
		_, err := cli.Version(context.Background())
		if !errors.Is(err, smolvm.ErrCelestoSmolVM) || !strings.Contains(err.Error(), "CelestoAI") {
			t.Errorf("%s: %v, want ErrCelestoSmolVM", name, err)
		}
	}
	// Neither: a program that prints a plausible version but has no
	// machine/pack commands.
	cli := smolvm.New(script(t, `case "$1" in --version) echo "smolvm 1.9.3";; *) echo "Commands:"; echo "  other  x";; esac`))
	if _, err := cli.Version(context.Background()); !errors.Is(err, smolvm.ErrBadVersion) {
		t.Errorf("impostor: %v, want ErrBadVersion", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "Z", "0", "bottle-x_1", "a-b-c", strings.Repeat("x", 128)} {
		if err := smolvm.ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "a-", "a--b", "a.b", "a/b", "a b", "ä", strings.Repeat("x", 129)} {
		if err := smolvm.ValidateName(bad); !errors.Is(err, smolvm.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}

func TestValidateNameAgreesWithTheFake(t *testing.T) {
	cli, _ := newCLI(t)
	ctx := context.Background()
	// Bypass the package's check through a direct fake run to compare.
	for _, name := range []string{"ok-1", "x_y", "9lives"} {
		if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: name}); err != nil {
			t.Errorf("create %q: %v", name, err)
		}
	}
	if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "bad--name"}); !errors.Is(err, smolvm.ErrInvalidName) {
		t.Errorf("create bad--name: %v", err)
	}
}

func TestEnvRefusesSecrets(t *testing.T) {
	cli, state := newCLI(t)
	ctx := context.Background()
	for _, name := range []string{"GITHUB_TOKEN", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "my_secret_thing", "NPM_AUTH_TOKEN"} {
		err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "s1", Env: []smolvm.EnvVar{smolvm.PlainEnv(name, "v")}})
		if !errors.Is(err, smolvm.ErrSecretEnv) || strings.Contains(err.Error(), "=v") {
			t.Errorf("PlainEnv(%s): %v", name, err)
		}
		_, err = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "s1", Command: []string{"true"}, Env: []smolvm.EnvVar{smolvm.PlainEnv(name, "v")}})
		if !errors.Is(err, smolvm.ErrSecretEnv) {
			t.Errorf("exec PlainEnv(%s): %v", name, err)
		}
	}
	if _, err := fakestate.ReadRecord(state, "s1"); err == nil {
		t.Fatal("smolvm was called with a secret-looking variable")
	}
	err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "s1", Env: []smolvm.EnvVar{
		smolvm.PlainEnv("HTTPS_PROXY", "http://10.0.0.2:3128"), smolvm.NotSecretEnv("SSH_KEY", "/nonsecret/path.pub"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := fakestate.ReadRecord(state, "s1")
	if strings.Join(rec.Env, " ") != "HTTPS_PROXY=http://10.0.0.2:3128 SSH_KEY=/nonsecret/path.pub" {
		t.Errorf("recorded env %v", rec.Env)
	}
	if s := fmt.Sprint(smolvm.PlainEnv("X", "hidden-value")); strings.Contains(s, "hidden-value") {
		t.Errorf("EnvVar prints its value: %s", s)
	}
}

// packProbe pushes the probe image to a loopback registry and packs it.
func packProbe(t *testing.T, cli *smolvm.CLI, reg *smolvmtest.Registry, o smolvm.PackOptions) (smolvm.Artifact, error) {
	t.Helper()
	img, err := smolvmtest.ProbeImage(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	o.Image = reg.Push(t, img, "bottle/probe:1")
	o.Output = filepath.Join(t.TempDir(), "probe")
	o.NoProxy = []string{"127.0.0.1", "localhost"}
	return cli.PackCreate(context.Background(), o)
}

func TestMachineLifecycle(t *testing.T) {
	var progress bytes.Buffer
	cli, state := newCLI(t)
	cli = smolvm.New(cli.Path(), smolvm.WithEnv(fakestate.EnvState+"="+state), smolvm.WithProgress(&progress))
	ctx := context.Background()
	reg := smolvmtest.NewRegistry(t, "")
	art, err := packProbe(t, cli, reg, smolvm.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if art.Sidecar != art.Stub+".smolmachine" || !strings.Contains(progress.String(), "Pulling image ") {
		t.Errorf("artifact %+v, progress %q", art, progress.String())
	}
	if _, err := os.Stat(art.Sidecar); err != nil {
		t.Fatal(err)
	}

	vol := t.TempDir()
	opts := smolvm.CreateOptions{
		Name:       "bottle-life",
		Labels:     map[string]string{"dev.dockerbottle.bottle": "life", "dev.dockerbottle.test": "1"},
		From:       art.Sidecar,
		Env:        []smolvm.EnvVar{smolvm.PlainEnv("SHARED", "create"), smolvm.PlainEnv("CREATE_ONLY", "yes")},
		AllowHosts: []string{"10.231.77.2"},
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("100.96.0.1/32")},
		Volumes:    []smolvm.Volume{{Host: vol, Guest: "/vol"}},
		CPUs:       2,
		MemoryMiB:  1024,
		Workload:   []string{"/bin/probe", "workload", "/vol/pid"},
		Ports:      []smolvm.PortMap{{Host: 18080, Guest: 3000}, {Host: 18081, Guest: 5173}},
	}
	if err := cli.MachineCreate(ctx, opts); err != nil {
		t.Fatal(err)
	}
	rec, err := fakestate.ReadRecord(state, "bottle-life")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rec.AllowHosts, ",") != "10.231.77.2" || strings.Join(rec.AllowCIDRs, ",") != "100.96.0.1/32" ||
		strings.Join(rec.Env, ",") != "SHARED=create,CREATE_ONLY=yes" || len(rec.Volumes) != 1 || rec.Volumes[0].Guest != "/vol" ||
		strings.Join(rec.Workload, " ") != "/bin/probe workload /vol/pid" || rec.Labels["dev.dockerbottle.bottle"] != "life" ||
		rec.CPUs != 2 || rec.MemoryMiB != 1024 || rec.From != art.Sidecar || strings.Join(rec.Ports, ",") != "18080:3000,18081:5173" {
		t.Errorf("recorded %+v", rec)
	}

	// Duplicate: typed, with smolvm's line verbatim and a remedy.
	err = cli.MachineCreate(ctx, opts)
	var ce *smolvm.CommandError
	if !errors.Is(err, smolvm.ErrAlreadyExists) || !errors.As(err, &ce) ||
		ce.Message != "Error: config operation failed: create machine: machine 'bottle-life' already exists or is being created" ||
		!strings.Contains(err.Error(), `creating smolvm machine "bottle-life"`) || !strings.Contains(err.Error(), "machine delete --name bottle-life -f") {
		t.Errorf("duplicate create: %v", err)
	}

	ms, err := cli.MachineList(ctx)
	if err != nil || len(ms) != 1 || ms[0].State != smolvm.StateCreated || ms[0].Labels["dev.dockerbottle.test"] != "1" ||
		ms[0].PID != nil || ms[0].Mounts != 1 || !ms[0].Network || ms[0].Image == nil || ms[0].RestartPolicy != "never" {
		t.Errorf("list: %+v, %v", ms, err)
	}

	_, err = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"true"}})
	if !errors.Is(err, smolvm.ErrNotRunning) || !strings.Contains(err.Error(), "machine start --name bottle-life") {
		t.Errorf("exec before start: %v", err)
	}

	if err := cli.MachineStart(ctx, "bottle-life"); err != nil {
		t.Fatal(err)
	}
	if err := cli.MachineStart(ctx, "bottle-life"); err != nil {
		t.Errorf("second start: %v", err)
	}
	m, err := cli.MachineStatus(ctx, "bottle-life")
	if err != nil || m.State != smolvm.StateRunning || m.PID == nil || *m.PID <= 0 || m.CPUs != 2 {
		t.Fatalf("status: %+v, %v", m, err)
	}
	testio.WaitPID(t, filepath.Join(vol, "pid"))

	// Guest exit codes come back as such, with a nil error.
	for _, want := range []int{0, 3, 42} {
		var out, errOut bytes.Buffer
		code, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "exit", fmt.Sprint(want)}, Stdout: &out, Stderr: &errOut})
		if err != nil || code != want {
			t.Errorf("exec exit %d: code %d, err %v, stderr %q", want, code, err, errOut.String())
		}
	}
	// A guest command that fails with exit 1 is the guest's, not smolvm's.
	var errOut bytes.Buffer
	code, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "say", "out", "Error: guest trouble"}, Stderr: &errOut})
	if err != nil || code != 0 || errOut.String() != "Error: guest trouble\n" {
		t.Errorf("exec stderr passthrough: %d %v %q", code, err, errOut.String())
	}
	code, err = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "cat", "/nope"}})
	if err != nil || code != 3 {
		t.Errorf("guest failure: %d %v", code, err)
	}

	// Env and workdir; stdin with Interactive.
	var out bytes.Buffer
	code, err = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "env"},
		Env: []smolvm.EnvVar{smolvm.PlainEnv("EXEC_ONLY", "e")}, Stdout: &out})
	if err != nil || code != 0 {
		t.Fatal(code, err)
	}
	// A machine's own -e beats its image's ENV; exec -e beats both.
	for _, kv := range []string{"SHARED=create", "CREATE_ONLY=yes", "IMAGE_ONLY=image", "EXEC_ONLY=e"} {
		if !strings.Contains(out.String(), kv+"\n") {
			t.Errorf("exec env lacks %s:\n%s", kv, out.String())
		}
	}
	out.Reset()
	if _, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "pwd"}, Workdir: "/tmp", Stdout: &out}); err != nil || out.String() != "/tmp\n" {
		t.Errorf("workdir: %q %v", out.String(), err)
	}
	out.Reset()
	if _, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "stdin"}, Interactive: true,
		Stdin: strings.NewReader("hello guest\n"), Stdout: &out}); err != nil || out.String() != "hello guest\n" {
		t.Errorf("stdin: %q %v", out.String(), err)
	}
	out.Reset()
	if code, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "isatty"}, TTY: true,
		Stdout: &out}); err != nil || code != 0 || !strings.Contains(out.String(), "stdout=true") {
		t.Errorf("TTY: %q %d %v", out.String(), code, err)
	}
	// --stream passes output on while the command still runs (it sleeps
	// until cancelled).
	sctx, cancel := context.WithCancel(ctx)
	// Without streaming the line would never come: give up then.
	stop := time.AfterFunc(time.Minute, cancel)
	defer stop.Stop()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := cli.MachineExec(sctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "say-sleep", "early"},
			Stream: true, Stdout: pw})
		pw.Close()
		done <- err
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); line != "early\n" {
		t.Errorf("--stream: %q %v", line, err)
	}
	select {
	case err := <-done:
		t.Errorf("--stream: the output came only when the command ended (%v)", err)
	default:
	}
	cancel()
	go io.Copy(io.Discard, pr)
	<-done
	if _, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"true"}, Stream: true, Detach: true}); !errors.Is(err, smolvm.ErrInvalidOption) {
		t.Errorf("--stream with -d: %v", err)
	}
	code, err = cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"probe", "sleep"}, Timeout: time.Second})
	if err != nil || code != 124 {
		t.Errorf("timeout: %d %v", code, err)
	}

	dir, err := cli.MachineDataDir(ctx, "bottle-life")
	if err != nil || dir != fakestate.DataDir(state, "bottle-life") {
		t.Errorf("data dir %q %v", dir, err)
	}

	if err := cli.MachineStop(ctx, "bottle-life"); err != nil {
		t.Fatal(err)
	}
	if err := cli.MachineStop(ctx, "bottle-life"); err != nil {
		t.Errorf("stopping a stopped machine: %v", err)
	}
	if m, err := cli.MachineStatus(ctx, "bottle-life"); err != nil || m.State != smolvm.StateStopped || m.PID != nil {
		t.Errorf("status after stop: %+v %v", m, err)
	}
	if err := cli.MachineDelete(ctx, "bottle-life"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"status":   func() error { _, err := cli.MachineStatus(ctx, "bottle-life"); return err }(),
		"start":    cli.MachineStart(ctx, "bottle-life"),
		"stop":     cli.MachineStop(ctx, "bottle-life"),
		"delete":   cli.MachineDelete(ctx, "bottle-life"),
		"data-dir": func() error { _, err := cli.MachineDataDir(ctx, "bottle-life"); return err }(),
		"exec": func() error {
			_, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "bottle-life", Command: []string{"x"}})
			return err
		}(),
	} {
		if !errors.Is(err, smolvm.ErrMachineNotFound) || !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, "Error: ") {
			t.Errorf("%s after delete: %v, want ErrMachineNotFound", name, err)
		}
	}
	if ms, err := cli.MachineList(ctx); err != nil || len(ms) != 0 {
		t.Errorf("list after delete: %v %v", ms, err)
	}
}

func TestExecCancel(t *testing.T) {
	cli, vol := runningProbeMachine(t, "c1")
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cli.MachineExec(cctx, smolvm.ExecOptions{Name: "c1", Command: []string{"probe", "workload", "/vol/exec.pid"}})
		done <- err
	}()
	pid := testio.WaitPID(t, filepath.Join(vol, "exec.pid"))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `machine "c1"`) {
		t.Errorf("cancelled exec: %v", err)
	}
	// The guest command dies with the cancelled smolvm exec.
	testio.WaitGone(t, pid, 10*time.Second)
	// A context already done never runs smolvm.
	if err := cli.MachineStop(cctx, "c1"); !errors.Is(err, context.Canceled) {
		t.Errorf("stop with a done context: %v", err)
	}
	if m, _ := cli.MachineStatus(ctx, "c1"); m.State != smolvm.StateRunning {
		t.Errorf("a cancelled call changed the machine: %s", m.State)
	}
}

func TestPackCreateCredentialsAndRefusals(t *testing.T) {
	cli, _ := newCLI(t)
	ctx := context.Background()
	reg := smolvmtest.NewRegistry(t, "", smolvmtest.WithBasicAuth("bottle", "pw-123"))

	_, err := packProbe(t, cli, reg, smolvm.PackOptions{})
	var ce *smolvm.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || !strings.HasPrefix(ce.Message, "Error: agent operation failed: pull image:") ||
		!strings.Contains(err.Error(), "packing image") {
		t.Errorf("pack without credentials: %v", err)
	}

	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[images.registries.%q]\nusername = \"bottle\"\npassword_env = \"BOTTLE_PULL_PW\"\n", reg.Host)), 0o600)
	art, err := packProbe(t, cli, reg, smolvm.PackOptions{Config: cfg, ConfigEnv: []string{"BOTTLE_PULL_PW=pw-123"}})
	if err != nil {
		t.Fatalf("pack with SMOLVM_CONFIG: %v", err)
	}
	if m, err := fakestate.ReadManifest(art.Sidecar); err != nil || m.Image != reg.Host+"/bottle/probe:1" {
		t.Errorf("manifest %+v %v", m, err)
	}

	for _, o := range []smolvm.PackOptions{
		{Image: "./image.tar", Output: "/tmp/x"},
		{Image: "-", Output: "/tmp/x"},
		{Image: "docker-daemon:foo bar", Output: "/tmp/x"},
		{Image: "127.0.0.1:5000/x:1", Output: "/tmp/x.smolmachine"},
		{Image: "127.0.0.1:5000/x:1"},
	} {
		if _, err := cli.PackCreate(ctx, o); !errors.Is(err, smolvm.ErrInvalidOption) {
			t.Errorf("PackCreate(%+v): %v, want ErrInvalidOption", o, err)
		}
	}
}

func TestCreateRefusals(t *testing.T) {
	cli, state := newCLI(t)
	ctx := context.Background()
	for _, o := range []smolvm.CreateOptions{
		{Name: "r", From: "/a.smolmachine", Image: "alpine"},
		{Name: "r", AllowHosts: []string{"10.0.0.1:443"}},
		{Name: "r", AllowHosts: []string{"example.com/x"}},
		{Name: "r", Ports: []smolvm.PortMap{{Host: 0, Guest: 80}}},
		{Name: "r", Ports: []smolvm.PortMap{{Host: 8080, Guest: 70000}}},
		{Name: "r", Volumes: []smolvm.Volume{{Host: "rel", Guest: "/g"}}},
		{Name: "r", Volumes: []smolvm.Volume{{Host: "/a:b", Guest: "/g"}}},
		{Name: "r", Labels: map[string]string{"a=b": "c"}},
		{Name: "r", Image: "/local/rootfs"},
	} {
		if err := cli.MachineCreate(ctx, o); !errors.Is(err, smolvm.ErrInvalidOption) {
			t.Errorf("MachineCreate(%+v): %v, want ErrInvalidOption", o, err)
		}
	}
	if _, err := fakestate.ReadRecord(state, "r"); err == nil {
		t.Error("a refused create reached smolvm")
	}
	// An IPv6 allow-host is not a host:port.
	if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "r6", AllowHosts: []string{"::1"}}); err != nil {
		t.Errorf("IPv6 allow-host: %v", err)
	}
}

func TestCreateRefusedOnOldSmolvm(t *testing.T) {
	cli, state := newCLI(t, fakestate.EnvVersion+"=1.7.5")
	ctx := context.Background()
	if _, err := cli.Version(ctx); err != nil {
		t.Fatal(err)
	}
	err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "old", From: "/x.smolmachine", AllowHosts: []string{"10.0.0.2"}})
	if !errors.Is(err, smolvm.ErrTooOld) {
		t.Errorf("create --from with an allowlist on 1.7.5: %v", err)
	}
	if _, err := fakestate.ReadRecord(state, "old"); err == nil {
		t.Error("smolvm was called")
	}
}

func TestKVMErrors(t *testing.T) {
	for mode, want := range map[string]error{"missing": smolvm.ErrKVMUnavailable, "denied": smolvm.ErrKVMPermission} {
		cli, _ := newCLI(t, fakestate.EnvKVM+"="+mode)
		ctx := context.Background()
		if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "k"}); err != nil {
			t.Fatal(err)
		}
		err := cli.MachineStart(ctx, "k")
		var ce *smolvm.CommandError
		// machine start wraps smolvm's KVM errors (CONTRACT.md section 6).
		if !errors.Is(err, want) || !errors.As(err, &ce) || !strings.HasPrefix(ce.Message, "Error: agent operation failed: start machine: kvm ") || ce.Remedy == "" ||
			!strings.Contains(err.Error(), "--backend docker") {
			t.Errorf("%s: %v", mode, err)
		}
	}
}

func TestPackCreateCancel(t *testing.T) {
	cli, _ := newCLI(t)
	// A registry that never answers: the pull hangs until smolvm is told
	// to stop.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hit := make(chan struct{}, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit <- struct{}{}
		<-r.Context().Done()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	out := filepath.Join(t.TempDir(), "hang")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cli.PackCreate(ctx, smolvm.PackOptions{Image: ln.Addr().String() + "/x:1", Output: out})
		done <- err
	}()
	<-hit
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pack: %v", err)
	}
	left, _ := os.ReadDir(filepath.Dir(out))
	if len(left) != 0 {
		t.Errorf("a cancelled pack left files: %v", left)
	}
}

// TestExecWhenTheMachineStops: a machine stopped under a running exec ends
// it with smolvm's lost-connection error, not a guest exit code
// (CONTRACT.md section 4).
func TestExecWhenTheMachineStops(t *testing.T) {
	cli, vol := runningProbeMachine(t, "s1")
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		code, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "s1", Command: []string{"probe", "workload", "/vol/exec.pid"}})
		if err == nil {
			err = fmt.Errorf("exit code %d", code)
		}
		done <- err
	}()
	testio.WaitPID(t, filepath.Join(vol, "exec.pid"))
	if err := cli.MachineStop(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, smolvm.ErrMachineStopped) || !strings.Contains(err.Error(), "connection to VM lost") {
		t.Errorf("exec under a stopped machine: %v", err)
	}
}

// TestUser: --user on create runs the workload and every exec as that
// user, exec -u overrides it, and a smolvm older than 1.14.2 (no --user)
// is refused before it runs.
func TestUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the fake changes user only when run as root (CI runs as root)")
	}
	cli, _ := newCLI(t)
	reg := smolvmtest.NewRegistry(t, "")
	art, err := packProbe(t, cli, reg, smolvm.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !cli.HasUserFlag(ctx) {
		t.Fatal("the fake of 1.32.2 has no --user")
	}
	if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: "u1", From: art.Sidecar, User: "1234:1235", Workload: []string{"probe", "sleep"}}); err != nil {
		t.Fatal(err)
	}
	if err := cli.MachineStart(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{"": "1234 1235\n", "4321": "4321 4321\n"} {
		var out bytes.Buffer
		if code, err := cli.MachineExec(ctx, smolvm.ExecOptions{Name: "u1", User: user, Command: []string{"probe", "uid"}, Stdout: &out}); err != nil || code != 0 || out.String() != want {
			t.Errorf("exec as %q: %q, %d, %v; want %q", user, out.String(), code, err, want)
		}
	}

	old, _ := newCLI(t, fakestate.EnvVersion+"=1.14.1")
	if old.HasUserFlag(ctx) {
		t.Error("1.14.1 said to have --user")
	}
	if err := old.MachineCreate(ctx, smolvm.CreateOptions{Name: "u2", User: "1000"}); !errors.Is(err, smolvm.ErrInvalidOption) || !strings.Contains(err.Error(), "1.14.2") {
		t.Errorf("--user on 1.14.1: %v", err)
	}
}

// runningProbeMachine packs the probe, and makes and starts a machine of it
// with a host directory at /vol; it returns the CLI and that directory.
func runningProbeMachine(t *testing.T, name string) (*smolvm.CLI, string) {
	t.Helper()
	cli, _ := newCLI(t)
	reg := smolvmtest.NewRegistry(t, "")
	art, err := packProbe(t, cli, reg, smolvm.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vol := t.TempDir()
	ctx := context.Background()
	if err := cli.MachineCreate(ctx, smolvm.CreateOptions{Name: name, From: art.Sidecar, Volumes: []smolvm.Volume{{Host: vol, Guest: "/vol"}},
		Workload: []string{"probe", "sleep"}}); err != nil {
		t.Fatal(err)
	}
	if err := cli.MachineStart(ctx, name); err != nil {
		t.Fatal(err)
	}
	return cli, vol
}
