package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	write := func(root, name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		files  map[string]string
		want   int64
		source string
	}{
		{"v2 in a container (cgroup namespace)", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "536870912\n",
		}, 512 << 20, "cgroup v2"},
		{"v2 seen from the host's cgroup tree", map[string]string{
			"proc/self/cgroup": "0::/system.slice/docker-abc.scope\n",
			"sys/fs/cgroup/system.slice/docker-abc.scope/memory.max": "268435456\n",
			"sys/fs/cgroup/memory.max":                               "max\n",
		}, 256 << 20, "cgroup v2"},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0, "cgroup v2"},
		{"v1 in a container: its cgroup is mounted as the root", map[string]string{
			"proc/self/cgroup":                           "9:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
		}, 512 << 20, "cgroup v1"},
		{"v1 with a shared hierarchy", map[string]string{
			"proc/self/cgroup": "4:cpu,memory:/user/1\n",
			"sys/fs/cgroup/memory/user/1/memory.limit_in_bytes": "1073741824\n",
		}, 1 << 30, "cgroup v1"},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0, "cgroup v1"},
		{"no cgroup", map[string]string{}, 0, ""},
	} {
		root := t.TempDir()
		for name, content := range c.files {
			write(root, name, content)
		}
		got, source := cgroupMemoryLimit(root)
		if got != c.want || source != c.source {
			t.Errorf("%s: %d (%s), want %d (%s)", c.name, got, source, c.want, c.source)
		}
	}
}
