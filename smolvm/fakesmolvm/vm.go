package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

// vmProcessCommand is the hidden subcommand that plays the VM: it owns the
// workload and lives until `machine stop`. Its PID is the machine's PID.
const vmProcessCommand = "_fake-vm"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// startVM prepares the root filesystem and volumes, then launches the VM
// process and waits until it has started the workload.
func startVM(r *fakestate.Record) (int, error) {
	rootfs := fakestate.RootfsDir(stateDir(), r.Name)
	if !r.RootfsLoaded {
		if err := loadRootfs(r, rootfs); err != nil {
			return 0, err
		}
		r.RootfsLoaded = true
		saveRecord(*r)
	}
	if err := mountDev(rootfs); err != nil {
		return 0, err
	}
	if err := mountVolumes(rootfs, r.Volumes); err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("agent operation failed: start machine: %v", err)
	}
	logPath := filepath.Join(fakestate.DataDir(stateDir(), r.Name), "agent-console.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("agent operation failed: start machine: %v", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("agent operation failed: start machine: %v", err)
	}
	defer pr.Close()
	cmd := exec.Command(self, vmProcessCommand, r.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return 0, fmt.Errorf("agent operation failed: start machine: %v", err)
	}
	pw.Close()
	vmPID := cmd.Process.Pid
	_ = cmd.Process.Release()
	// The VM process answers "ok WORKLOAD_PID" or "error MESSAGE".
	line, _ := bufio.NewReader(pr).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "ok "):
		r.WorkloadPID, _ = strconv.Atoi(strings.TrimPrefix(line, "ok "))
		r.InitDone = true
		return vmPID, nil
	case strings.HasPrefix(line, "error "):
		return 0, errors.New(strings.TrimPrefix(line, "error "))
	}
	return 0, fmt.Errorf("agent operation failed: start machine: the VM process exited early (see %s)", logPath)
}

// vmProcessMain runs init (first start), launches the workload and waits
// for SIGTERM. The workload may exit; the machine stays running, like a VM
// whose workload ended.
func vmProcessMain(args []string) {
	// fd 3 is the pipe to `machine start`; guest processes must not hold it.
	syscall.CloseOnExec(3)
	ready := os.NewFile(3, "ready")
	reply := func(s string) {
		if ready != nil {
			fmt.Fprintln(ready, s)
			ready.Close()
			ready = nil
		}
	}
	if len(args) != 1 {
		reply("error agent operation failed: start machine: bad VM process arguments")
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	r, ok := loadRecord(args[0])
	if !ok {
		reply("error vm not found: " + args[0])
		os.Exit(1)
	}
	rootfs := fakestate.RootfsDir(stateDir(), r.Name)
	if !r.InitDone {
		for _, c := range r.Init {
			cmd, err := guestCommand(rootfs, r, workloadEnv(r), "", "", []string{"/bin/sh", "-c", c})
			if err == nil {
				cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
				err = cmd.Run()
			}
			if err != nil {
				reply(fmt.Sprintf("error agent operation failed: init command %q: %v", c, err))
				os.Exit(1)
			}
		}
	}
	argv := r.Workload
	if len(argv) == 0 && r.Manifest != nil {
		argv = append(append([]string{}, r.Manifest.Entrypoint...), r.Manifest.Cmd...)
	}
	var workload *exec.Cmd
	done := make(chan struct{})
	if len(argv) > 0 {
		cmd, err := guestCommand(rootfs, r, workloadEnv(r), "", r.User, argv)
		if err != nil {
			reply("error agent operation failed: start workload: " + err.Error())
			os.Exit(1)
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr.Setpgid = true
		if err := cmd.Start(); err != nil {
			reply(fmt.Sprintf("error agent operation failed: start workload %q: %v", argv[0], err))
			os.Exit(1)
		}
		workload = cmd
		go func() {
			err := cmd.Wait()
			fmt.Printf("workload exited: %v\n", err)
			close(done)
		}()
		reply(fmt.Sprintf("ok %d", cmd.Process.Pid))
	} else {
		close(done)
		reply("ok 0")
	}
	<-sigs
	if workload != nil {
		_ = syscall.Kill(-workload.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-workload.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	os.Exit(0)
}

// guestEnv merges NAME=VALUE lists, later values winning, keeping the
// order of first appearance.
func guestEnv(lists ...[]string) []string {
	idx := map[string]int{}
	var out []string
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// workloadEnv is the workload's environment at start: the image ENV,
// then the create -e list (later values win).
func workloadEnv(r fakestate.Record) []string {
	return guestEnv([]string{defaultPath}, imageEnv(r), r.Env)
}

// execEnv is an exec's environment: image ENV, the record env (create
// -e), secrets, then exec -e; later values win (CONTRACT.md section 4: a
// machine's own -e beats its image's ENV).
func execEnv(r fakestate.Record, secrets, env []string) []string {
	return guestEnv([]string{defaultPath}, imageEnv(r), r.Env, secrets, env)
}

func imageEnv(r fakestate.Record) []string {
	if r.Manifest != nil {
		return r.Manifest.Env
	}
	return nil
}

// guestCommand builds a host process that runs argv inside the machine's
// root filesystem (chroot), with the given environment, in workdir (or the
// image's).
func guestCommand(rootfs string, r fakestate.Record, env []string, workdir, user string, argv []string) (*exec.Cmd, error) {
	wd := "/"
	if r.Manifest != nil && r.Manifest.Workdir != "" {
		wd = r.Manifest.Workdir
	}
	if r.Manifest == nil && r.Workdir != "" {
		wd = r.Workdir // -w counts for --image machines only
	}
	if workdir != "" {
		wd = workdir
	}
	pathVar := ""
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			pathVar = strings.TrimPrefix(kv, "PATH=")
		}
	}
	bin, err := lookGuestPath(rootfs, argv[0], pathVar, wd)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(wd, "/") {
		wd = "/" + wd
	}
	if fi, err := os.Stat(filepath.Join(rootfs, wd)); err != nil || !fi.IsDir() {
		if err := os.MkdirAll(filepath.Join(rootfs, wd), 0o755); err != nil {
			return nil, fmt.Errorf("workdir %s: %v", wd, err)
		}
	}
	cmd := &exec.Cmd{Path: bin, Args: argv, Env: env, Dir: wd}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs}
	if user != "" {
		cred, err := credential(rootfs, user)
		if err != nil {
			return nil, err
		}
		// Only root can change user; the fake run by anyone else runs
		// guests as itself.
		if os.Geteuid() == 0 {
			cmd.SysProcAttr.Credential = cred
		}
	}
	return cmd, nil
}

// credential resolves a --user value as smolvm does: a numeric uid[:gid],
// or a name of the image's /etc/passwd (its primary group).
func credential(rootfs, user string) (*syscall.Credential, error) {
	name, group, _ := strings.Cut(user, ":")
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		gid := uid
		if group != "" {
			if gid, err = strconv.ParseUint(group, 10, 32); err != nil {
				return nil, fmt.Errorf("user %q: the group must be numeric", user)
			}
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	b, _ := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 4 && f[0] == name {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 == nil && err2 == nil {
				return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
			}
		}
	}
	return nil, fmt.Errorf("unable to find user %s: no matching entries in passwd file", name)
}

// lookGuestPath resolves a command name the way a guest's execvp would,
// against the guest's PATH inside rootfs. It returns the guest path.
func lookGuestPath(rootfs, name, pathVar, wd string) (string, error) {
	check := func(guest string) bool {
		host, err := resolveInRoot(rootfs, guest)
		if err != nil {
			return false
		}
		fi, err := os.Stat(host)
		return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		g := name
		if !strings.HasPrefix(g, "/") {
			g = path.Join(wd, g)
		}
		if !check(g) {
			return "", fmt.Errorf("executable file not found in the guest: %s", name)
		}
		return g, nil
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			continue
		}
		if g := path.Join(dir, name); check(g) {
			return g, nil
		}
	}
	return "", fmt.Errorf("executable file not found in the guest $PATH: %s", name)
}

// resolveInRoot maps a guest path to a host path, following symlinks
// inside rootfs (absolute links are relative to rootfs), never leaving it.
func resolveInRoot(rootfs, guest string) (string, error) {
	parts := strings.Split(path.Clean("/"+guest), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		if p == "" || p == "." {
			continue
		}
		next := path.Join(cur, p)
		fi, err := os.Lstat(filepath.Join(rootfs, next))
		if err != nil {
			return filepath.Join(rootfs, next, path.Join(parts...)), nil
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", errors.New("too many symlinks")
		}
		target, err := os.Readlink(filepath.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(path.Clean(target), "/"), parts...)
		cur = "/"
	}
	return filepath.Join(rootfs, cur), nil
}

// loadRootfs fills rootfs from the artifact (--from) or, for --image
// machines, by pulling the image as smolvm's first start does.
func loadRootfs(r *fakestate.Record, rootfs string) error {
	if err := os.RemoveAll(rootfs); err != nil {
		return fmt.Errorf("rootfs operation failed: %v", err)
	}
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return fmt.Errorf("rootfs operation failed: %v", err)
	}
	var rc io.ReadCloser
	switch {
	case r.From != "":
		var err error
		if rc, err = fakestate.OpenRootfs(r.From); err != nil {
			return fmt.Errorf("agent operation failed: extract sidecar: %v", err)
		}
	case r.Image != "":
		fmt.Fprintf(os.Stderr, "Pulling image %s... ", r.Image)
		img, digest, err := pull(context.Background(), r.Image, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
		if err != nil {
			fmt.Fprintln(os.Stderr, "failed.")
			return fmt.Errorf("agent operation failed: pull image: %v", err)
		}
		fmt.Fprintln(os.Stderr, "done.")
		cf, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("agent operation failed: pull image: %v", err)
		}
		r.Manifest = &fakestate.Manifest{Image: r.Image, Digest: digest, Entrypoint: cf.Config.Entrypoint,
			Cmd: cf.Config.Cmd, Env: cf.Config.Env, Workdir: cf.Config.WorkingDir}
		rc = mutate.Extract(img)
	default:
		// A bare machine: an empty root filesystem.
		return nil
	}
	defer rc.Close()
	if err := extractTar(rc, rootfs); err != nil {
		return fmt.Errorf("agent operation failed: extract layers: %v", err)
	}
	return nil
}

// extractTar unpacks a merged layer into root. Entries may not leave root:
// names are cleaned and no entry is written through a symlink.
func extractTar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	type dirMode struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}
	var dirs []dirMode
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel := path.Clean("/" + h.Name)
		if rel == "/" {
			continue
		}
		dst := filepath.Join(root, rel)
		if err := noSymlinkParents(root, rel); err != nil {
			return err
		}
		mode := h.FileInfo().Mode().Perm() | h.FileInfo().Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{dst, mode, h.Uid, h.Gid})
		case tar.TypeReg:
			_ = os.RemoveAll(dst)
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			_ = os.Lchown(dst, h.Uid, h.Gid)
			if err := os.Chmod(dst, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.RemoveAll(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
			_ = os.Lchown(dst, h.Uid, h.Gid)
		case tar.TypeLink:
			target := path.Clean("/" + h.Linkname)
			if err := noSymlinkParents(root, target); err != nil {
				return err
			}
			_ = os.RemoveAll(dst)
			if err := os.Link(filepath.Join(root, target), dst); err != nil {
				return err
			}
		default:
			// Device nodes, FIFOs: a microVM guest has its own /dev; the
			// fake needs none of them.
		}
	}
	// Directories keep their owners too, as smolvm's packs do since 1.8.1
	// (an agent's home must stay its own).
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Lchown(dirs[i].path, dirs[i].uid, dirs[i].gid)
		_ = os.Chmod(dirs[i].path, dirs[i].mode)
	}
	return nil
}

// noSymlinkParents refuses a path whose parent directories inside root
// include a symlink, which could point outside root.
func noSymlinkParents(root, rel string) error {
	cur := root
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("layer entry %s goes through the symlink %s", rel, strings.TrimPrefix(cur, root))
		}
		if !fi.IsDir() {
			return fmt.Errorf("layer entry %s: %s is not a directory", rel, strings.TrimPrefix(cur, root))
		}
	}
	return nil
}

// mountVolumes bind-mounts each volume at its guest path inside rootfs
// (read-only when asked). The fake needs root for this, as smolvm needs
// virtiofs.
func mountVolumes(rootfs string, vols []fakestate.Volume) error {
	for _, v := range vols {
		target, err := resolveInRoot(rootfs, v.Guest)
		if err != nil {
			return fmt.Errorf("mount operation failed: %s: %v", v.Guest, err)
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mount operation failed: %s: %v", v.Guest, err)
		}
		if real, err := filepath.EvalSymlinks(target); err != nil || (real != rootfs && !strings.HasPrefix(real, rootfs+"/")) {
			return fmt.Errorf("mount operation failed: guest path %s leaves the root filesystem", v.Guest)
		}
		if err := syscall.Mount(v.Host, target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("mount operation failed: bind %s at %s: %v (the fake smolvm needs root for volumes)", v.Host, v.Guest, err)
		}
		if v.ReadOnly {
			if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_REC, ""); err != nil {
				return fmt.Errorf("mount operation failed: read-only %s: %v", v.Guest, err)
			}
		}
	}
	return nil
}

// guestDevices are the device nodes a guest has (smolvm's guest runs
// commands in a container with a populated /dev): the image's own /dev
// holds none after extraction, so the fake binds the host's.
var guestDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// mountDev gives the guest a /dev: the basic device nodes and the host's
// devpts (terminals the guest allocates itself, as a session helper does).
func mountDev(rootfs string) error {
	dev := filepath.Join(rootfs, "dev")
	if fi, err := os.Lstat(dev); err == nil && !fi.IsDir() {
		if err := os.Remove(dev); err != nil {
			return fmt.Errorf("mount operation failed: /dev: %v", err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dev, "pts")); err == nil && !fi.IsDir() {
		_ = os.Remove(filepath.Join(dev, "pts"))
	}
	if err := os.MkdirAll(filepath.Join(dev, "pts"), 0o755); err != nil {
		return fmt.Errorf("mount operation failed: /dev: %v", err)
	}
	for _, d := range guestDevices {
		target := filepath.Join(dev, d)
		if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
			_ = os.Remove(target) // a symlink from the image, say
		}
		if err := os.WriteFile(target, nil, 0o666); err != nil {
			return fmt.Errorf("mount operation failed: /dev/%s: %v", d, err)
		}
		if err := syscall.Mount("/dev/"+d, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("mount operation failed: bind /dev/%s: %v (the fake smolvm needs root)", d, err)
		}
	}
	// A devpts of the guest's own, as a VM (or a container) has: any user
	// of the guest can open its ptmx, and the host's ptys stay the host's.
	if err := syscall.Mount("devpts", filepath.Join(dev, "pts"), "devpts", syscall.MS_NOSUID|syscall.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount operation failed: devpts: %v (the fake smolvm needs root)", err)
	}
	// A ptmx bound alone cannot find its devpts (the kernel looks for pts
	// next to it in its own mount): point it at the devpts's own, as
	// containers do.
	ptmx := filepath.Join(dev, "ptmx")
	if fi, err := os.Lstat(ptmx); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		_ = os.Remove(ptmx)
	}
	if err := os.Symlink("pts/ptmx", ptmx); err != nil && !os.IsExist(err) {
		return fmt.Errorf("mount operation failed: /dev/ptmx: %v", err)
	}
	return nil
}
