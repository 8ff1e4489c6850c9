package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

const machineUsage = "machine <COMMAND>"

func machineMain(args []string) {
	if len(args) == 0 {
		usageError(&cmdSpec{usage: machineUsage}, "'smolvm machine' requires a subcommand but one was not provided")
	}
	switch args[0] {
	case "create":
		machineCreate(args[1:])
	case "start":
		machineStart(args[1:])
	case "stop":
		machineStop(args[1:])
	case "delete", "rm":
		machineDelete(args[1:])
	case "ls", "list":
		machineList(args[1:])
	case "status":
		machineStatus(args[1:])
	case "exec":
		machineExec(args[1:])
	case "run":
		machineRun(args[1:])
	case "data-dir":
		machineDataDir(args[1:])
	case "-h", "--help":
		fmt.Println("Manage machines (create, start, stop, exec)\n\nUsage: smolvm machine <COMMAND>\n\nCommands:\n  run\n  exec\n  create\n  start\n  stop\n  delete\n  status\n  ls\n  data-dir")
	default:
		usageError(&cmdSpec{usage: machineUsage}, "unrecognized subcommand '%s'", args[0])
	}
}

var createSpec = &cmdSpec{
	path:  "machine create",
	usage: "machine create [OPTIONS] [-- <COMMAND>...]",
	flags: []flagSpec{
		{long: "name", short: 'n', value: "NAME"},
		{long: "label", value: "KEY=VALUE", multi: true},
		{long: "image", short: 'I', value: "IMAGE"},
		{long: "cpus", value: "N"},
		{long: "mem", value: "MiB"},
		{long: "storage", value: "GiB"},
		{long: "overlay", value: "GiB"},
		{long: "volume", short: 'v', value: "HOST:GUEST[:ro]", multi: true},
		{long: "port", short: 'p', value: "HOST:GUEST", multi: true},
		{long: "net"},
		{long: "net-backend", value: "BACKEND"},
		{long: "dns", value: "IP"},
		{long: "network", value: "NAME"},
		{long: "allow-cidr", value: "CIDR", multi: true},
		{long: "allow-host", value: "HOST", multi: true},
		{long: "outbound-localhost-only"},
		{long: "init", value: "COMMAND", multi: true},
		{long: "env", short: 'e', value: "KEY=VALUE", multi: true},
		{long: "workdir", short: 'w', value: "DIR"},
		{long: "user", short: 'u', value: "USER"},
		{long: "ssh-agent"},
		{long: "secret-env", value: "GUEST_VAR=HOST_VAR", multi: true},
		{long: "secret-file", value: "GUEST_VAR=PATH", multi: true},
		{long: "gpu"},
		{long: "gpu-vram", value: "MiB"},
		{long: "rosetta"},
		{long: "cuda"},
		{long: "auto-graph"},
		{long: "docker-socket"},
		{long: "expose-socket", value: "GUEST[:HOST]", multi: true},
		{long: "mount-socket", value: "HOST:GUEST", multi: true},
		{long: "smolfile", short: 's', value: "SMOLFILE"},
		{long: "max-image-size", value: "SIZE"},
		{long: "from", value: "FROM"},
	},
	trailing:  lastTrailing,
	conflicts: [][2]string{{"from", "image"}, {"from", "smolfile"}},
}

func machineCreate(args []string) {
	p := createSpec.parse(args)
	name := p.str("name")
	if !p.has("name") {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		name = "vm-" + hex.EncodeToString(b)
	}
	if err := validateName(name); err != nil {
		fail("config operation failed: create machine: %s", err)
	}
	r := fakestate.Record{
		Name: name, CreatedAt: time.Now().Unix(), Labels: map[string]string{},
		CPUs: 4, MemoryMiB: 8192, StorageGB: 20, OverlayGB: 10,
		Env: []string{}, AllowHosts: []string{}, AllowCIDRs: []string{}, Volumes: []fakestate.Volume{},
		Ports: []string{}, Init: p.list("init"), Workload: p.trailing,
		Net: p.has("net"), NetBackend: p.str("net-backend"), DNS: p.str("dns"),
		OutboundLocalhostOnly: p.has("outbound-localhost-only"), Workdir: p.str("workdir"), User: p.str("user"),
		SSHAgent: p.has("ssh-agent"),
	}
	if r.Init == nil {
		r.Init = []string{}
	}
	if r.Workload == nil {
		r.Workload = []string{}
	}
	for _, l := range p.list("label") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			usageError(createSpec, "invalid value '%s' for '--label <KEY=VALUE>': expected KEY=VALUE", l)
		}
		r.Labels[k] = v
	}
	for _, flag := range []string{"cpus", "mem", "storage", "overlay"} {
		if _, err := intFlag(p, flag, 1); err != nil {
			usageError(createSpec, "%v", err)
		}
	}
	cpus, _ := intFlag(p, "cpus", 4)
	mem, _ := intFlag(p, "mem", 8192)
	r.StorageGB, _ = intFlag(p, "storage", 20)
	r.OverlayGB, _ = intFlag(p, "overlay", 10)
	r.CPUs, r.MemoryMiB = cpus, mem

	if p.has("secret-env") || p.has("secret-file") {
		if p.has("from") {
			// smolvm ignores them with --from (use exec --secret-env).
			fmt.Fprintln(os.Stderr, "warning: --secret-env/--secret-file are ignored with --from; use `machine exec --secret-env`")
		} else {
			fail("config operation failed: create machine: the fake smolvm does not support --secret-env/--secret-file")
		}
	}
	if p.has("smolfile") {
		fail("config operation failed: create machine: the fake smolvm does not read Smolfiles (-s)")
	}

	// Egress policy.
	for _, c := range p.list("allow-cidr") {
		pfx, err := parseCIDR(c)
		if err != nil {
			fail("config operation failed: --allow-cidr: invalid CIDR '%s': %v", c, err)
		}
		r.AllowCIDRs = append(r.AllowCIDRs, pfx)
	}
	for _, h := range p.list("allow-host") {
		if _, _, err := net.SplitHostPort(h); err == nil {
			fail("config operation failed: --allow-host: '%s' includes a port; give a host name or IP only", h)
		}
		if _, err := netip.ParseAddr(h); err != nil {
			if _, err := net.LookupHost(h); err != nil {
				fail("config operation failed: --allow-host: cannot resolve '%s': %v", h, err)
			}
		}
		r.AllowHosts = append(r.AllowHosts, h)
	}
	policy := len(r.AllowCIDRs)+len(r.AllowHosts) > 0 || r.OutboundLocalhostOnly
	if policy && r.NetBackend == "tsi" {
		fail("config operation failed: --net-backend: tsi cannot enforce an egress policy (--allow-cidr/--allow-host/--outbound-localhost-only); use virtio-net or drop --net-backend")
	}
	if b := r.NetBackend; b != "" && b != "tsi" && b != "virtio-net" {
		usageError(createSpec, "invalid value '%s' for '--net-backend <BACKEND>'\n  [possible values: tsi, virtio-net]", b)
	}

	for _, spec := range p.list("volume") {
		v, err := parseVolume(spec)
		if err != nil {
			fail("%s", err)
		}
		r.Volumes = append(r.Volumes, v)
	}
	r.Ports = append(r.Ports, p.list("port")...)

	for _, e := range p.list("env") {
		k, v, ok := strings.Cut(e, "=")
		if k == "" {
			fail("config operation failed: --env: invalid env format '%s': expected KEY=VALUE", e)
		}
		if !ok {
			// Bare KEY copies the host value at create time.
			hv, set := os.LookupEnv(k)
			if !set {
				fail("config operation failed: --env: '%s' is not set in the host environment", k)
			}
			v = hv
		}
		r.Env = append(r.Env, k+"="+v)
	}

	if p.has("from") {
		from, err := filepath.Abs(p.str("from"))
		if err != nil {
			fail("config operation failed: create from .smolmachine: %v", err)
		}
		if _, err := os.Stat(from); err != nil {
			fail("config operation failed: create from .smolmachine: file not found: %s", from)
		}
		m, err := fakestate.ReadManifest(from)
		if err != nil {
			fail("agent operation failed: read .smolmachine: %v", err)
		}
		host := "linux/" + runtime.GOARCH
		if arch := m.Platform[strings.LastIndexByte(m.Platform, '/')+1:]; "linux/"+arch != host {
			fail("config operation failed: create from .smolmachine: artifact platform %s does not match host %s", m.Platform, host)
		}
		r.From, r.Manifest, r.Image = from, &m, m.Image
		// --cpus/--mem count only when they differ from the defaults;
		// otherwise the manifest's values win.
		if cpus == 4 && m.CPUs > 0 {
			r.CPUs = m.CPUs
		}
		if mem == 8192 && m.MemoryMiB > 0 {
			r.MemoryMiB = m.MemoryMiB
		}
		r.Network = m.Network
	} else if p.has("image") {
		if err := checkImageRef(p.str("image")); err != nil {
			fail("config operation failed: create machine: %v", err)
		}
		r.Image = p.str("image")
	}
	r.Network = r.Network || r.Net || policy || len(r.Ports) > 0 || p.has("network") || p.has("dns")

	unlock := lockMachine(name)
	defer unlock()
	if !reserveRecord(r) {
		fail("config operation failed: create machine: machine '%s' already exists or is being created", name)
	}
	// smolvm makes the machine's data dir at create (1.32.2).
	if err := os.MkdirAll(fakestate.DataDir(stateDir(), name), 0o700); err != nil {
		fail("io operation failed: %v", err)
	}
	fmt.Printf("Created machine: %s\n", name)
}

// validateName is smolvm's validate_vm_name with the label "machine name".
func validateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("machine name cannot be empty")
	case len(name) > 128:
		return fmt.Errorf("machine name too long: %d characters (max 128)", len(name))
	case !isAlnum(name[0]):
		return fmt.Errorf("machine name must start with a letter or digit (got: %q)", name)
	case strings.HasSuffix(name, "-"):
		return fmt.Errorf("machine name cannot end with a hyphen (got: %q)", name)
	}
	prev := false
	for _, c := range name {
		if c == '-' {
			if prev {
				return fmt.Errorf("machine name cannot contain consecutive hyphens")
			}
			prev = true
		} else {
			prev = false
		}
		if !(c < 128 && isAlnum(byte(c))) && c != '-' && c != '_' {
			if c == '/' || c == '\\' {
				return fmt.Errorf("machine name cannot contain path separators")
			}
			return fmt.Errorf("machine name contains invalid character: '%c'", c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parseCIDR accepts a CIDR or a bare IP (which becomes /32 or /128).
func parseCIDR(s string) (string, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", err
	}
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}

func parseVolume(spec string) (fakestate.Volume, error) {
	parts := strings.Split(spec, ":")
	var v fakestate.Volume
	switch {
	case len(parts) == 3 && parts[2] == "ro":
		v.ReadOnly = true
	case len(parts) == 3 && parts[2] == "rw":
	case len(parts) != 2:
		return v, fmt.Errorf("config operation failed: --volume: expected HOST_PATH:GUEST_PATH, got '%s'", spec)
	}
	v.Host, v.Guest = parts[0], parts[1]
	if v.Host == "" || v.Guest == "" {
		return v, fmt.Errorf("config operation failed: --volume: both HOST_PATH and GUEST_PATH are required in '%s'", spec)
	}
	if !strings.HasPrefix(v.Guest, "/") {
		return v, fmt.Errorf("config operation failed: --volume: guest path '%s' must be absolute", v.Guest)
	}
	abs, err := filepath.Abs(v.Host)
	if err != nil {
		return v, err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return v, fmt.Errorf("mount source not found: %s", abs)
	}
	v.Host = abs
	return v, nil
}

var nameOnlySpec = func(cmd string) *cmdSpec {
	return &cmdSpec{path: "machine " + cmd, usage: "machine " + cmd + " [OPTIONS]",
		flags: []flagSpec{{long: "name", short: 'n', value: "NAME"}}}
}

func nameOr(p *parsed) string {
	if n := p.str("name"); n != "" {
		return n
	}
	return "default"
}

var startSpec = &cmdSpec{path: "machine start", usage: "machine start [OPTIONS]", flags: []flagSpec{
	{long: "name", short: 'n', value: "NAME"}, {long: "proxy", value: "URL"}, {long: "no-proxy", value: "LIST"},
	{long: "forkable"},
}}

func machineStart(args []string) {
	p := startSpec.parse(args)
	name := nameOr(p)
	unlock := lockMachine(name)
	defer unlock()
	r, ok := loadRecord(name)
	if !ok {
		// smolvm creates `default` when no --name is given; the fake has no
		// image to give it, so it reports it missing like any other name.
		fail("vm not found: %s", name)
	}
	if vmAlive(r.PID, r.Name) {
		fmt.Printf("Machine '%s' already running (PID: %d)\n", name, r.PID)
		return
	}
	checkKVM("start machine")
	fmt.Fprintf(os.Stderr, "Starting machine '%s'...\n", name)
	pid, err := startVM(&r)
	if err != nil {
		_ = unmountAll(fakestate.RootfsDir(stateDir(), name))
		saveRecord(r)
		fail("%v", err)
	}
	r.Started, r.PID = true, pid
	saveRecord(r)
	fmt.Printf("Machine '%s' running (PID: %d)\n", name, pid)
}

func machineStop(args []string) {
	spec := nameOnlySpec("stop")
	p := spec.parse(args)
	name := nameOr(p)
	unlock := lockMachine(name)
	defer unlock()
	r, ok := loadRecord(name)
	if !ok {
		fail("vm not found: %s", name)
	}
	if !vmAlive(r.PID, r.Name) {
		fmt.Printf("Machine '%s' is not running (state: %s)\n", name, machineState(r))
		return
	}
	if err := stopVM(&r); err != nil {
		fail("%v", err)
	}
	saveRecord(r)
	fmt.Printf("Stopped machine: %s\n", name)
}

var deleteSpec = &cmdSpec{path: "machine delete", usage: "machine delete [OPTIONS]", flags: []flagSpec{
	{long: "name", short: 'n', value: "NAME"}, {long: "force", short: 'f'}, {long: "cascade"},
}}

func machineDelete(args []string) {
	p := deleteSpec.parse(args)
	name := nameOr(p)
	unlock := lockMachine(name)
	defer unlock()
	r, ok := loadRecord(name)
	if !ok {
		fail("vm not found: %s", name)
	}
	if !p.has("force") && !p.has("cascade") {
		fmt.Fprintf(os.Stderr, "Delete machine '%s'? [y/N] ", name)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); (err != nil && line == "") || (a != "y" && a != "yes") {
			fmt.Println("Cancelled")
			return
		}
	}
	if vmAlive(r.PID, r.Name) {
		if err := stopVM(&r); err != nil {
			fail("%v", err)
		}
	}
	dataDir := fakestate.DataDir(stateDir(), name)
	if err := unmountAll(dataDir); err != nil {
		// Never remove a directory a volume is still mounted under.
		fail("mount operation failed: unmount volumes: %v", err)
	}
	if err := os.RemoveAll(dataDir); err != nil {
		fail("io operation failed: remove %s: %v", dataDir, err)
	}
	if err := os.Remove(fakestate.RecordPath(stateDir(), name)); err != nil {
		fail("database operation failed: delete: %v", err)
	}
	fmt.Printf("Deleted machine: %s\n", name)
}

var lsSpec = &cmdSpec{path: "machine ls", usage: "machine ls [OPTIONS]", flags: []flagSpec{
	{long: "verbose", short: 'v'}, {long: "json"},
}}

func machineList(args []string) {
	p := lsSpec.parse(args)
	recs := allRecords()
	if p.has("json") {
		objs := make([]map[string]any, 0, len(recs))
		for _, r := range recs {
			objs = append(objs, statusJSON(r))
		}
		printJSON(objs)
		return
	}
	if len(recs) == 0 {
		fmt.Println("No machines found")
		return
	}
	fmt.Printf("%-24s %-10s %-5s %-8s %s\n", "NAME", "STATE", "CPUS", "MEMORY", "PID")
	for _, r := range recs {
		st := machineState(r)
		pid := "-"
		if st == "running" {
			pid = fmt.Sprint(r.PID)
		}
		fmt.Printf("%-24s %-10s %-5d %-8s %s\n", r.Name, st, r.CPUs, fmt.Sprintf("%dMiB", r.MemoryMiB), pid)
		if p.has("verbose") {
			for _, e := range r.Env {
				fmt.Printf("  env: %s\n", e)
			}
		}
	}
}

var statusSpec = &cmdSpec{path: "machine status", usage: "machine status [OPTIONS]", flags: []flagSpec{
	{long: "name", short: 'n', value: "NAME"}, {long: "json"},
}}

func machineStatus(args []string) {
	p := statusSpec.parse(args)
	name := nameOr(p)
	r, ok := loadRecord(name)
	if !ok {
		fail("config operation failed: machine status: machine '%s' not found", name)
	}
	if p.has("json") {
		printJSON(statusJSON(r))
		return
	}
	if st := machineState(r); st == "running" {
		fmt.Printf("Machine '%s': running (PID: %d)\n", name, r.PID)
	} else {
		fmt.Printf("Machine '%s': %s\n", name, st)
	}
}

func machineDataDir(args []string) {
	p := nameOnlySpec("data-dir").parse(args)
	name := nameOr(p)
	if _, ok := loadRecord(name); !ok {
		fail("vm not found: %s", name)
	}
	fmt.Println(fakestate.DataDir(stateDir(), name))
}

// statusJSON is the object of `machine ls --json` and `status --json`.
func statusJSON(r fakestate.Record) map[string]any {
	st := machineState(r)
	var pid any
	if st == "running" {
		pid = r.PID
	}
	var image any
	if r.Image != "" {
		image = r.Image
	}
	entrypoint, cmd := []string{}, []string{}
	if r.Manifest != nil {
		if r.Manifest.Entrypoint != nil {
			entrypoint = r.Manifest.Entrypoint
		}
		if r.Manifest.Cmd != nil {
			cmd = r.Manifest.Cmd
		}
	}
	return map[string]any{
		"name": r.Name, "state": st, "cpus": r.CPUs, "memory_mib": r.MemoryMiB, "pid": pid,
		"mounts": len(r.Volumes), "ports": len(r.Ports), "created_at": r.CreatedAt,
		"storage_gb": r.StorageGB, "overlay_gb": r.OverlayGB, "image": image,
		"entrypoint": entrypoint, "cmd": cmd, "ephemeral": false,
		"gpu": false, "gpu_vram_mib": nil, "cuda": false, "forkable": false,
		"cuda_fork_pool_size": nil, "cuda_vram_limit_mib": nil, "forkpoint_held": false,
		"labels": r.Labels, "restart_policy": "never", "restart_max_retries": 0, "restart_count": 0,
		"health_cmd": nil, "health_interval_secs": nil, "health_timeout_secs": nil,
		"health_retries": nil, "health_startup_grace_secs": nil, "network": r.Network,
	}
}

func printJSON(v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fail("config operation failed: serialize json: %v", err)
	}
	fmt.Println(string(b))
}

// stopVM ends the fake VM process (and so the workload), then unmounts the
// machine's volumes.
func stopVM(r *fakestate.Record) error {
	if p, err := os.FindProcess(r.PID); err == nil {
		_ = p.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for vmAlive(r.PID, r.Name) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if vmAlive(r.PID, r.Name) {
		_ = syscall.Kill(r.PID, syscall.SIGKILL)
	}
	if r.WorkloadPID > 0 {
		_ = syscall.Kill(-r.WorkloadPID, syscall.SIGKILL)
	}
	// A stopped VM runs nothing: processes started by `machine exec` (-d
	// ones, which live in sessions of their own, included) end with it.
	killGuestProcesses(fakestate.RootfsDir(stateDir(), r.Name))
	r.PID, r.WorkloadPID = 0, 0
	if err := unmountAll(fakestate.RootfsDir(stateDir(), r.Name)); err != nil {
		return fmt.Errorf("mount operation failed: unmount volumes: %v", err)
	}
	return nil
}

// killGuestProcesses kills every process whose root directory is rootfs:
// the fake's guest processes, which are chrooted there.
func killGuestProcesses(rootfs string) {
	if real, err := filepath.EvalSymlinks(rootfs); err == nil {
		rootfs = real
	}
	for range 3 {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := false
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err == nil && root == rootfs {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		// Processes forked meanwhile are caught by the next pass.
		time.Sleep(20 * time.Millisecond)
	}
}
