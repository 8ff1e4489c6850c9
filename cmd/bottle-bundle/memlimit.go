package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// applyMemoryLimit gives the Go runtime a soft memory limit of nine tenths
// of the container's (cgroup v2 or v1) when GOMEMLIMIT does not set one,
// so that the collector works harder before the kernel kills the bundle.
// It returns the memory the process may use, 0 when unknown; the gate
// derives the bounds of a push from it.
func applyMemoryLimit() int64 {
	limit, source := cgroupMemoryLimit("/")
	soft := debug.SetMemoryLimit(-1)
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		if limit == 0 && soft < math.MaxInt64 {
			limit, source = soft, "GOMEMLIMIT"
		}
	case limit > 0:
		soft = limit / 10 * 9
		debug.SetMemoryLimit(soft)
	}
	if limit == 0 {
		fmt.Fprintln(os.Stderr, "bundle: no memory limit found (no cgroup limit, no GOMEMLIMIT)")
		return 0
	}
	fmt.Fprintf(os.Stderr, "bundle: memory limit %d MiB (%s), GOMEMLIMIT %d MiB\n", limit>>20, source, soft>>20)
	return limit
}

// cgroupMemoryLimit reads the memory limit of this process's cgroup under
// root ("/" but in tests): cgroup v2's memory.max or v1's
// memory.limit_in_bytes, in the process's own cgroup or, inside a
// container whose cgroup is mounted as the root, at the root. 0 means
// none found or unlimited.
func cgroupMemoryLimit(root string) (int64, string) {
	v2, v1 := "", ""
	if f, err := os.Open(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "0::/path" (v2) or "N:controller,controller:/path" (v1).
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				v2 = parts[2]
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" {
					v1 = parts[2]
				}
			}
		}
		f.Close() //nolint:errcheck // only read
	}
	cg := filepath.Join(root, "sys/fs/cgroup")
	try := []struct{ file, source string }{
		{filepath.Join(cg, v2, "memory.max"), "cgroup v2"},
		{filepath.Join(cg, "memory.max"), "cgroup v2"},
		{filepath.Join(cg, "memory", v1, "memory.limit_in_bytes"), "cgroup v1"},
		{filepath.Join(cg, "memory", "memory.limit_in_bytes"), "cgroup v1"},
	}
	for _, t := range try {
		b, err := os.ReadFile(t.file)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, t.source
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 writes "no limit" as a huge number near 2^63.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, t.source
		}
		return n, t.source
	}
	return 0, ""
}
