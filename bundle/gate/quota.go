package gate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// pushedLedger, in the repository's directory, names the packs the
	// bottle's pushes stored, one a line: the quota counts them, and it
	// outlives a restart of the bundle.
	pushedLedger = "gate-pushed"
	// staleLockAge is how old a ref lock must be to be taken for one a
	// crash left: git holds its locks for moments.
	staleLockAge = time.Minute
	// minFreeBytes is left free on the stage directory's disk, which is
	// the user's own.
	minFreeBytes = 256 << 20
)

// pushedBytes is what the bottle's accepted pushes store now.
func (g *Gate) pushedBytes() int64 {
	b, _ := os.ReadFile(filepath.Join(g.repo.Dir(), pushedLedger))
	var n int64
	for _, name := range strings.Fields(string(b)) {
		for _, ext := range []string{".pack", ".idx"} {
			if st, err := os.Stat(filepath.Join(g.repo.Dir(), "objects", "pack", filepath.Base(name)+ext)); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

func (g *Gate) recordPushed(name string) error {
	f, err := os.OpenFile(filepath.Join(g.repo.Dir(), pushedLedger), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(name + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// packRoom is how large the next pack may be, and which limit says so:
// max_pack_bytes, what is left of the bottle's quota, or the disk's free
// space. An error refuses the push before its pack is read.
func (g *Gate) packRoom() (int64, string, error) {
	room, why := g.cfg.MaxPackBytes, "max_pack_bytes"
	quota := g.cfg.MaxPushedBytes
	used := g.pushedBytes()
	if left := quota - used; left < room {
		if left <= 0 {
			return 0, "", fmt.Errorf("this bottle's pushes already store %s, all of its quota for pushed data (the gate's max_pushed_bytes, %s): the user can raise the quota or start a new bottle",
				size(used), size(quota))
		}
		room, why = left, fmt.Sprintf("what is left of the bottle's quota for pushed data, the gate's max_pushed_bytes of %s, which the user can raise", size(quota))
	}
	if free, ok := diskFree(filepath.Join(g.repo.Dir(), "objects")); ok {
		left := free - minFreeBytes
		if left <= 0 {
			return 0, "", fmt.Errorf("the disk of the bottle's stage directory has only %s free: the user must free space on it before the bottle can push", size(free))
		}
		if left < room {
			room, why = left, "the free space on the disk of the bottle's stage directory"
		}
	}
	return room, why, nil
}

// sweepIfIdle removes what failed or crashed pushes left, unless a push is
// under way (it sweeps when it ends).
func (g *Gate) sweepIfIdle() {
	select {
	case g.pushSlot <- struct{}{}:
		defer func() { <-g.pushSlot }()
		g.sweep()
	default:
	}
}

func (g *Gate) sweep() {
	for _, p := range g.repo.RemoveGarbage(staleLockAge) {
		g.logger.Printf("removed %s, left by a push that failed", p)
	}
}

// size writes a byte count for people, in MiB from 1 MiB on.
func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
