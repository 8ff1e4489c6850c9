package hostcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/internal/bundlebin"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider/guest"
	"github.com/docker-bottle/docker-bottle/smolvm"
)

// bootCacheFile keeps the last boot check's verdict in the state dir, so
// that `run` does not boot a test machine each time. doctor always checks
// again.
const bootCacheFile = "bootcheck.json"

// bootCacheTTL bounds how long a verdict is trusted when nothing it
// depends on (the smolvm binary, the kernel, /dev/kvm) changed.
const bootCacheTTL = 24 * time.Hour

// bootTimeout bounds a boot check: smolvm itself gives up on a guest that
// makes no boot progress for 30 s.
const bootTimeout = 90 * time.Second

type bootVerdict struct {
	Key     string    `json:"key"`
	Boots   bool      `json:"boots"`
	Detail  string    `json:"detail"`
	Checked time.Time `json:"checked"`
}

// Boot says whether smolvm can boot a microVM here, by booting one (see
// smolvm.CLI.BootCheck) with the bundle's static binary as its only file.
// It fills the boot fields of hv; with fresh false a recent verdict for the
// same smolvm binary, kernel and /dev/kvm is reused from stateDir.
func Boot(ctx context.Context, cli *smolvm.CLI, hv plan.HypervisorFacts, stateDir string, fresh bool) plan.HypervisorFacts {
	key := bootKey(cli.Path())
	cache := filepath.Join(stateDir, bootCacheFile)
	if !fresh {
		var v bootVerdict
		if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &v) == nil &&
			v.Key == key && time.Since(v.Checked) < bootCacheTTL {
			return withBoot(hv, v.Boots, v.Detail+" (checked "+v.Checked.Local().Format(time.DateTime)+")")
		}
	}
	boots, detail := bootOnce(ctx, cli)
	if stateDir != "" && ctx.Err() == nil {
		if b, err := json.Marshal(bootVerdict{Key: key, Boots: boots, Detail: detail, Checked: time.Now()}); err == nil {
			_ = os.WriteFile(cache, b, 0o600)
		}
	}
	return withBoot(hv, boots, detail)
}

func withBoot(hv plan.HypervisorFacts, boots bool, detail string) plan.HypervisorFacts {
	hv.BootChecked, hv.Boots, hv.BootDetail = true, boots, detail
	return hv
}

func bootOnce(ctx context.Context, cli *smolvm.CLI) (bool, string) {
	bin, err := bundlebin.Binary(runtime.GOARCH)
	if err != nil {
		return false, "cannot check: " + err.Error()
	}
	root, err := os.MkdirTemp("", "bottle-bootcheck-rootfs-")
	if err != nil {
		return false, "cannot check: " + err.Error()
	}
	defer os.RemoveAll(root)
	// As root, smolvm runs each VM as an unprivileged uid of its own, which
	// must be able to read the image directory.
	if err := os.Chmod(root, 0o755); err != nil {
		return false, "cannot check: " + err.Error()
	}
	if err := os.WriteFile(filepath.Join(root, "bottle-bundle"), bin, 0o755); err != nil {
		return false, "cannot check: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	start := time.Now()
	err = cli.BootCheck(ctx, smolvm.BootCheckOptions{Rootfs: root, Command: []string{"/bottle-bundle", guest.SubcommandReady}, Marker: guest.ReadyMarker})
	if err != nil {
		var ce *smolvm.CommandError
		if errors.As(err, &ce) && ce.Remedy != "" {
			return false, fmt.Sprintf("%s: %s (%s)", cli.Path(), ce.Message, ce.Remedy)
		}
		return false, err.Error()
	}
	return true, fmt.Sprintf("a test microVM booted and ran a command in %s", time.Since(start).Round(100*time.Millisecond))
}

// bootKey names what a boot verdict depends on: the smolvm binary, the
// host kernel, and who may open /dev/kvm.
func bootKey(smolvmPath string) string {
	var parts []string
	if fi, err := os.Stat(smolvmPath); err == nil {
		parts = append(parts, fmt.Sprintf("%s %d %d", smolvmPath, fi.Size(), fi.ModTime().UnixNano()))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, strings.TrimSpace(string(b)))
	}
	if fi, err := os.Stat("/dev/kvm"); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			parts = append(parts, fmt.Sprintf("kvm %o %d:%d", fi.Mode().Perm(), st.Uid, st.Gid))
		}
	}
	return strings.Join(parts, "; ")
}
