package bringup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/docker-bottle/docker-bottle/pki"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/stage"
)

// A bundle whose stage is on the engine (plan.BundlePlan.StageOnEngine)
// reads it from a volume the plugin fills through the engine API and the
// guest dir from a second one (the agent mounts it read-only): nothing of
// it is a path of the client's disk. Every bundle reads its secrets from a
// tmpfs filled after start (SendSecrets): no secret is on a disk.
const (
	// SecretsMount is the bundle's tmpfs for the secrets' values.
	SecretsMount = "/secrets"
	// auditDir holds what the bundle writes in its stage volume: the
	// volume's root is root's, the dir is the bundle's user's.
	auditDir = "audit"
	// maxStageFile bounds what is read back of a file of the stage.
	maxStageFile = 1 << 20
	// The CA key's and the operator token's files in SecretsMount.
	caKeyFile         = "ca-key.pem"
	operatorTokenFile = "operator.token"
)

// StageCopier is what filling and reading a stage on the engine asks of
// it.
type StageCopier interface {
	CopyToContainer(ctx context.Context, containerID string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	CopyFromContainer(ctx context.Context, containerID string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}

// bundleUser is who the bundle runs as: on Linux the invoking user, so
// that files it writes in a bind-mounted stage dir stay the user's; the
// owner of what the plugin copies into its volumes.
func bundleUser() (user string, uid, gid int) {
	if runtime.GOOS != "linux" {
		return "", 0, 0
	}
	uid, gid = os.Getuid(), os.Getgid()
	return fmt.Sprintf("%d:%d", uid, gid), uid, gid
}

// stageMounts are the bundle's mounts of its stage: the stage dir bound,
// or the two volumes on the engine.
//
// The stage dir is bound read-only: the bundle writes only into the
// gate's repository and the audit dir, bound writable over it. The gate's
// config and hooks, which the host's git reads and runs when the user
// fetches, stay read-only over those.
func stageMounts(p plan.Plan, labels func(string) map[string]string) []mount.Mount {
	if !p.Bundle.StageOnEngine {
		dir := stage.Of(p)
		bind := func(name string, readOnly bool) mount.Mount {
			target := StageMount
			if name != "" {
				target += "/" + name
			}
			return mount.Mount{Type: mount.TypeBind, Source: dir.File(name), Target: target, ReadOnly: readOnly}
		}
		return []mount.Mount{bind("", true), bind(stage.GateRepo, false), bind(auditDir, false),
			bind(stage.GateRepo+"/config", true), bind(stage.GateRepo+"/hooks", true)}
	}
	vol := func(role, target string) mount.Mount {
		return mount.Mount{Type: mount.TypeVolume, Source: stage.Volume(p.Slug, role), Target: target,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: labels(role)}}
	}
	return []mount.Mount{vol(plan.RoleStage, StageMount), vol(plan.RoleGuest, StageMount+"/"+stage.GuestDir)}
}

// tarWriter writes the files of a stage into a tar, owned by the
// bundle's user.
type tarWriter struct {
	tw       *tar.Writer
	uid, gid int
	now      time.Time
}

func newTarWriter(w io.Writer) *tarWriter {
	_, uid, gid := bundleUser()
	return &tarWriter{tw: tar.NewWriter(w), uid: uid, gid: gid, now: time.Now()}
}

func (t *tarWriter) dir(name string, mode int64) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: t.uid, Gid: t.gid, ModTime: t.now})
}

func (t *tarWriter) file(name string, mode int64, data []byte) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		Uid: t.uid, Gid: t.gid, ModTime: t.now}); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

// copyFile adds the file at src as name, streamed.
func (t *tarWriter) copyFile(src, name string, mode, size int64) error {
	f, err := os.Open(src) //nolint:gosec // G304: a file of the stage dir or one the user named
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size,
		Uid: t.uid, Gid: t.gid, ModTime: t.now}); err != nil {
		return err
	}
	_, err = io.CopyN(t.tw, f, size)
	return err
}

// tree adds the regular files and dirs under src (a dir or one file) as
// name, with their modes; skip leaves out a path relative to src.
func (t *tarWriter) tree(src, name string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && rel != "." && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := path.Join(name, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := int64(info.Mode().Perm())
		switch {
		case d.IsDir():
			if target == "." {
				return nil
			}
			return t.dir(target, mode)
		case info.Mode().IsRegular():
			return t.copyFile(p, target, mode, info.Size())
		}
		return nil // sockets, symlinks: nothing the bundle reads
	})
}

// fillStage copies what the bundle reads into its volumes, through the
// created (not yet started) container id: the stage dir but the plan, the
// operator token and the guest dir into the stage volume, with the host
// files of mounts at their targets (under StageMount) and the dir the
// bundle writes in; the guest dir into the guest volume.
func fillStage(ctx context.Context, e StageCopier, id string, p plan.Plan, mounts []Mount) error {
	for _, m := range mounts {
		if !strings.HasPrefix(m.Target, StageMount+"/") {
			return fmt.Errorf("%s is not in the stage: it cannot be copied to the engine", m.Target)
		}
	}
	err := copyTar(ctx, e, id, StageMount, func(tw *tarWriter) error {
		err := tw.tree(p.StageDir, ".", func(rel string) bool {
			return rel == stage.PlanFile || rel == stage.GuestDir || rel == secretsDir || rel == stage.OperatorToken
		})
		if err != nil {
			return err
		}
		if err := tw.dir(auditDir, 0o700); err != nil {
			return err
		}
		for _, m := range mounts {
			target := strings.TrimPrefix(m.Target, StageMount+"/")
			if dir := path.Dir(target); dir != "." {
				if err := tw.dir(dir, 0o755); err != nil {
					return err
				}
			}
			if err := tw.tree(m.Source, target, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copying the stage to the engine: %w", err)
	}
	err = copyTar(ctx, e, id, StageMount+"/"+stage.GuestDir, func(tw *tarWriter) error {
		return tw.tree(stage.Of(p).File(stage.GuestDir), ".", nil)
	})
	if err != nil {
		return fmt.Errorf("copying the guest dir to the engine: %w", err)
	}
	return nil
}

// copyTar copies the tar that write writes into container id at dest,
// streamed: a gate repository of any size is never whole in memory.
func copyTar(ctx context.Context, e StageCopier, id, dest string, write func(*tarWriter) error) error {
	pr, pw := io.Pipe()
	go func() {
		tw := newTarWriter(pw)
		err := write(tw)
		if err == nil {
			err = tw.tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := e.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dest, Content: pr})
	// A copy that failed early leaves the writer blocked: unblock it.
	pr.CloseWithError(errors.New("the copy ended"))
	return err
}

// WriteStageFile writes name (slash-separated, relative to the stage) for
// the bundle of p with mode: into the stage dir, or on the engine through
// the bundle container (created or running). A guest file is readable by
// the bottle, whatever user it runs as.
func WriteStageFile(ctx context.Context, e StageCopier, p plan.Plan, name string, data []byte, mode os.FileMode) error {
	if !p.Bundle.StageOnEngine {
		tmp := stage.Of(p).File(name + ".tmp")
		if err := os.WriteFile(tmp, data, mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, mode); err != nil {
			return err
		}
		// Renamed into place: a reader never sees half a file.
		return os.Rename(tmp, stage.Of(p).File(name))
	}
	dir, base := path.Split(name)
	var b bytes.Buffer
	tw := newTarWriter(&b)
	if err := tw.file(base, int64(mode.Perm()), data); err != nil {
		return err
	}
	if err := tw.tw.Close(); err != nil {
		return err
	}
	_, err := e.CopyToContainer(ctx, p.Bundle.Container, client.CopyToContainerOptions{
		DestinationPath: strings.TrimSuffix(StageMount+"/"+dir, "/"), Content: &b})
	if err != nil {
		return fmt.Errorf("writing %s into the bundle of %s: %w", name, p.Slug, err)
	}
	return nil
}

// ReadStageFile reads name (as WriteStageFile) of the bundle of p: from
// the stage dir, or through the bundle container on the engine. A missing
// file is fs.ErrNotExist.
func ReadStageFile(ctx context.Context, e StageCopier, p plan.Plan, name string) ([]byte, error) {
	if !p.Bundle.StageOnEngine {
		return os.ReadFile(stage.Of(p).File(name))
	}
	res, err := e.CopyFromContainer(ctx, p.Bundle.Container, client.CopyFromContainerOptions{SourcePath: StageMount + "/" + name})
	if isNotFound(err) {
		return nil, fmt.Errorf("%s in the bundle of %s: %w", name, p.Slug, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s from the bundle of %s: %w", name, p.Slug, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading %s from the bundle of %s: %w", name, p.Slug, err)
	}
	if h.Typeflag != tar.TypeReg || h.Size > maxStageFile {
		return nil, fmt.Errorf("%s in the bundle of %s is not a file of at most %d bytes", name, p.Slug, maxStageFile)
	}
	return io.ReadAll(io.LimitReader(tr, maxStageFile))
}

// SecretSender is what sending the secrets asks of the engine.
type SecretSender interface {
	ExecCreate(ctx context.Context, containerID string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
}

// SendSecrets gives the running bundle of p the values of its secrets
// (getenv: the host's environment, nil os.Getenv), the CA key (from caDir)
// and a new operator token, which it writes where the plugin reads it
// (stage.WriteOperatorToken): the one of an earlier start is worthless
// from then on. They go as a tar on the stdin of an exec of the bundle
// binary, which writes them into its tmpfs: no value is on a disk of the
// bundle's, in the exec's command line or environment, nor in any log.
// The bundle waits for them before it serves.
func SendSecrets(ctx context.Context, e SecretSender, p plan.Plan, caDir string, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	files, err := secretFiles(p, getenv)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(caDir, pki.KeyFile))
	if err != nil {
		return fmt.Errorf("reading the bottle CA's key: %w", err)
	}
	operator, err := stage.WriteOperatorToken(p)
	if err != nil {
		return err
	}
	files = append(files, secretFile{name: caKeyFile, value: string(key)}, secretFile{name: operatorTokenFile, value: operator})
	var b bytes.Buffer
	tw := newTarWriter(&b)
	for _, f := range files {
		if err := tw.file(f.name, 0o600, []byte(f.value)); err != nil {
			return err
		}
	}
	if err := tw.tw.Close(); err != nil {
		return err
	}
	ex, err := e.ExecCreate(ctx, p.Bundle.Container, client.ExecCreateOptions{
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Cmd: []string{BinaryPath, "secrets", "--dir", SecretsMount},
	})
	if err != nil {
		return fmt.Errorf("sending the secrets to the bundle of %s: %w", p.Slug, err)
	}
	att, err := e.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("sending the secrets to the bundle of %s: %w", p.Slug, err)
	}
	defer att.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(att.Conn, &b)
		werr <- errors.Join(err, att.CloseWrite())
	}()
	var out bytes.Buffer
	_, rerr := stdcopy.StdCopy(&out, &out, io.LimitReader(att.Reader, 64<<10))
	if err := errors.Join(<-werr, rerr); err != nil {
		return fmt.Errorf("sending the secrets to the bundle of %s: %w", p.Slug, err)
	}
	res, err := e.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return fmt.Errorf("sending the secrets to the bundle of %s: %w", p.Slug, err)
	}
	if res.Running || res.ExitCode != 0 {
		return fmt.Errorf("the bundle of %s did not take its secrets (exit %d): %s", p.Slug, res.ExitCode, strings.TrimSpace(out.String()))
	}
	return nil
}

// SecretsOnDisk reports whether p's bundle container was made before the
// secrets went to the bundle's memory: it has no tmpfs for them, and reads
// them from its stage dir, where they stay until the bottle is removed.
func SecretsOnDisk(ctx context.Context, e interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
}, p plan.Plan) (bool, error) {
	res, err := e.ContainerInspect(ctx, p.Bundle.Container, client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspecting the bundle of %s: %w", p.Slug, err)
	}
	if hc := res.Container.HostConfig; hc != nil {
		if _, ok := hc.Tmpfs[SecretsMount]; ok {
			return false, nil
		}
	}
	return true, nil
}

// secretsTmpfs is the bundle's tmpfs for the secrets, the bundle user's
// alone.
func secretsTmpfs() string {
	_, uid, gid := bundleUser()
	return "rw,noexec,nosuid,nodev,size=1m,mode=0700,uid=" + strconv.Itoa(uid) + ",gid=" + strconv.Itoa(gid)
}

// SyncGate copies the gate's repository of a bottle whose stage is on the
// engine back into its stage dir, where the git remote the plugin
// registered fetches from: what the agent pushed is then there. Entries
// other than dirs and plain files are left out, and none lands outside
// the repository.
func SyncGate(ctx context.Context, e StageCopier, p plan.Plan) error {
	if !p.Bundle.StageOnEngine {
		return nil
	}
	res, err := e.CopyFromContainer(ctx, p.Bundle.Container, client.CopyFromContainerOptions{SourcePath: StageMount + "/" + stage.GateRepo})
	if err != nil {
		return fmt.Errorf("reading the gate's repository of %s from the engine: %w", p.Slug, err)
	}
	defer res.Content.Close()
	dir := stage.Of(p).File(stage.GateRepo)
	fresh, old := dir+".sync", dir+".old"
	if err := os.RemoveAll(fresh); err != nil {
		return err
	}
	if err := os.Mkdir(fresh, 0o700); err != nil {
		return err
	}
	if err := untar(res.Content, fresh, stage.GateRepo); err != nil {
		_ = os.RemoveAll(fresh) // best effort: err is what to report
		return fmt.Errorf("reading the gate's repository of %s from the engine: %w", p.Slug, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(fresh, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// untar writes the dirs and plain files of a tar whose entries are under
// top/ into dir, through an os.Root.
func untar(r io.Reader, dir, top string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // the files written through it are closed and checked
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name, ok := strings.CutPrefix(path.Clean(h.Name), top)
		name = strings.TrimPrefix(name, "/")
		if !ok || name == "" {
			continue
		}
		mode := os.FileMode(h.Mode).Perm() | 0o600 // #nosec G115 -- permission bits only
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := root.MkdirAll(path.Dir(name), 0o700); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.CopyN(f, tr, h.Size)
			if err := errors.Join(err, f.Close()); err != nil {
				return err
			}
		}
	}
}

// FindInStage lists the files of the stage and guest volumes of p on the
// engine (read through its bundle container) that hold value; the gate's
// repository, whose objects are compressed, is left out.
func FindInStage(ctx context.Context, e StageCopier, p plan.Plan, value []byte) ([]string, error) {
	res, err := e.CopyFromContainer(ctx, p.Bundle.Container, client.CopyFromContainerOptions{SourcePath: StageMount})
	if err != nil {
		return nil, fmt.Errorf("reading the stage of %s on the engine: %w", p.Slug, err)
	}
	defer res.Content.Close()
	var found []string
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the stage of %s on the engine: %w", p.Slug, err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, stage.GateRepo+"/") {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, value) {
			found = append(found, "volume file "+h.Name)
		}
	}
}
