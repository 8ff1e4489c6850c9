package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker-bottle/docker-bottle/image/store"
)

// ownedDirs are the layer's entries for dirs (and, with home, the user's
// home from /etc/passwd when the image sets no HOME): each one a directory
// owned by the image's user, with the image's mode where the image has it.
// An image that runs as root gets them owned by spec.RootUser, or none.
func ownedDirs(st *store.Store, base store.Image, fsys *mergedFS, dirs []string, spec Spec) ([]entryOut, error) {
	home := spec.OwnHome
	if len(dirs) == 0 && !home {
		return nil, nil
	}
	cfg, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("bottle layer: reading the image's config: %w", err)
	}
	uid, gid, pwHome, err := imageUser(st, base, fsys, cfg.Config.User)
	if err != nil {
		return nil, err
	}
	if uid == 0 {
		if spec.RootUser == "" {
			return nil, nil
		}
		// Validate made sure these are numbers; root's home is not the
		// stand-in user's.
		u, g, _ := strings.Cut(spec.RootUser, ":")
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
		pwHome = ""
	}
	if home && envHome(base) == "" && pwHome != "" && pwHome != "/" && path.IsAbs(pwHome) && !slices.Contains(dirs, path.Clean(pwHome)) {
		dirs = append(slices.Clone(dirs), path.Clean(pwHome))
	}
	var outs []entryOut
	for _, d := range dirs {
		name := strings.TrimPrefix(d, "/")
		mode := int64(0o755)
		if e, ok := fsys.entries[name]; ok {
			if e.hdr.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("bottle layer: %s is not a directory in the image; the bottle mounts the agent's own disk there", d)
			}
			mode = e.hdr.Mode & 0o7777
		}
		outs = append(outs, entryOut{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid}})
	}
	return outs, nil
}

// imageUser resolves the image's USER (uid, uid:gid, name or name:group):
// names through the image's /etc/passwd and /etc/group, as the container
// runtime does; a uid without a group takes its passwd entry's group, or
// its own number when it has none (the owner is what lets it write).
func imageUser(st *store.Store, base store.Image, fsys *mergedFS, user string) (uid, gid int, home string, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" || u == "root" {
		return 0, 0, "", nil
	}
	passwd, err := readImageFile(st, base, fsys, "etc/passwd")
	if err != nil {
		return 0, 0, "", err
	}
	uid, uidErr := strconv.Atoi(u)
	gid = -1
	for _, f := range colonRecords(passwd, 7) {
		pu, _ := strconv.Atoi(f[2])
		pg, _ := strconv.Atoi(f[3])
		if (uidErr != nil && f[0] == u) || (uidErr == nil && pu == uid) {
			uid, uidErr, gid, home = pu, nil, pg, f[5]
			break
		}
	}
	if uidErr != nil {
		return 0, 0, "", fmt.Errorf("bottle layer: the image's user %q is not in its /etc/passwd", u)
	}
	if hasGroup {
		n, err := strconv.Atoi(g)
		if err != nil {
			group, rerr := readImageFile(st, base, fsys, "etc/group")
			if rerr != nil {
				return 0, 0, "", rerr
			}
			n = -1
			for _, f := range colonRecords(group, 3) {
				if f[0] == g {
					n, _ = strconv.Atoi(f[2])
					break
				}
			}
			if n < 0 {
				return 0, 0, "", fmt.Errorf("bottle layer: the image's group %q is not in its /etc/group", g)
			}
		}
		gid = n
	}
	if gid < 0 {
		gid = uid
	}
	return uid, gid, home, nil
}

// envHome is the image's HOME variable when it names a directory other
// than /.
func envHome(base store.Image) string {
	cfg, err := base.ConfigFile()
	if err != nil {
		return ""
	}
	for _, kv := range cfg.Config.Env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok && path.IsAbs(v) && path.Clean(v) != "/" {
			return path.Clean(v)
		}
	}
	return ""
}

// readImageFile is a file of the image, or nothing when it has none.
func readImageFile(st *store.Store, base store.Image, fsys *mergedFS, name string) ([]byte, error) {
	target, e, ok := fsys.resolve(name)
	if !ok || e.hdr.Typeflag != tar.TypeReg {
		return nil, nil
	}
	b, err := readEntry(st, base.Layers[e.layer], target)
	if err != nil {
		return nil, fmt.Errorf("bottle layer: reading the image's /%s: %w", name, err)
	}
	return b, nil
}

// colonRecords are the lines of a passwd-style file with at least n
// fields, split on colons.
func colonRecords(b []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}
