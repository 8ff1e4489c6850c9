package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker-bottle/docker-bottle/smolvm/fakesmolvm/fakestate"
)

// lockMachine serialises commands on one machine (start, stop, delete,
// create) across processes.
func lockMachine(name string) func() {
	dir := filepath.Join(stateDir(), "machines")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail("database operation failed: open: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "."+name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fail("database operation failed: lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		fail("database operation failed: lock: %v", err)
	}
	return func() { f.Close() }
}

func loadRecord(name string) (fakestate.Record, bool) {
	r, err := fakestate.ReadRecord(stateDir(), name)
	if errors.Is(err, fakestate.ErrNoMachine) {
		return r, false
	}
	if err != nil {
		fail("database operation failed: read: %v", err)
	}
	return r, true
}

func saveRecord(r fakestate.Record) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		fail("database operation failed: write: %v", err)
	}
	path := fakestate.RecordPath(stateDir(), r.Name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		fail("database operation failed: write: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail("database operation failed: write: %v", err)
	}
}

// reserveRecord creates the record only if no machine of that name exists
// (O_EXCL), so concurrent creates of one name cannot both succeed.
func reserveRecord(r fakestate.Record) bool {
	dir := filepath.Join(stateDir(), "machines")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fail("database operation failed: open: %v", err)
	}
	f, err := os.OpenFile(fakestate.RecordPath(stateDir(), r.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false
	}
	if err != nil {
		fail("database operation failed: reserve: %v", err)
	}
	f.Close()
	saveRecord(r)
	return true
}

func allRecords() []fakestate.Record {
	entries, err := os.ReadDir(filepath.Join(stateDir(), "machines"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fail("database operation failed: list: %v", err)
	}
	var out []fakestate.Record
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		if r, ok := loadRecord(strings.TrimSuffix(n, ".json")); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// vmAlive reports whether pid is this machine's fake VM process (not a
// recycled pid).
func vmAlive(pid int, name string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 3 || args[1] != vmProcessCommand || args[2] != name {
		return false
	}
	// A zombie (exited, not yet reaped) is not running.
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return false
	}
	return true
}

// machineState is what smolvm's probe would say.
func machineState(r fakestate.Record) string {
	switch {
	case vmAlive(r.PID, r.Name):
		return "running"
	case !r.Started:
		return "created"
	default:
		return "stopped"
	}
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll detaches every mount under dir and checks none is left, so
// that removing dir can never reach into a volume's host directory.
func unmountAll(dir string) error {
	for attempt := 0; attempt < 5; attempt++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			_ = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(left, ", "))
	}
	return nil
}
