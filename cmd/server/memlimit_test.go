package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	write := func(root, path, content string) {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	none := func(string) (string, bool) { return "", false }

	// cgroup v2: the process's own cgroup's memory.max.
	v2 := t.TempDir()
	write(v2, "proc/self/cgroup", "0::/system.slice/roster.service\n")
	write(v2, "sys/fs/cgroup/system.slice/roster.service/memory.max", "536870912\n")
	write(v2, "sys/fs/cgroup/memory.max", "max\n")
	if l, src := memoryLimit(v2, none); src != "cgroup" || l != 384<<20 {
		t.Fatalf("cgroup v2 of 512 MiB: %d from %s, want 384 MiB", l, src)
	}
	// GOMEMLIMIT wins over the cgroup.
	if l, src := memoryLimit(v2, func(k string) (string, bool) { return "100MiB", k == "GOMEMLIMIT" }); src != "GOMEMLIMIT" || l != 0 {
		t.Fatalf("with GOMEMLIMIT: %d from %s", l, src)
	}
	// cgroup v2 without a limit: the default.
	write(v2, "sys/fs/cgroup/system.slice/roster.service/memory.max", "max\n")
	if l, src := memoryLimit(v2, none); src != "default" || l != defaultMemoryLimit {
		t.Fatalf("cgroup v2 without a limit: %d from %s", l, src)
	}

	// cgroup v1 inside a container: the mount's root holds the limit.
	v1 := t.TempDir()
	write(v1, "proc/self/cgroup", "4:memory:/docker/abc\n0::/\n")
	write(v1, "sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n")
	if l, src := memoryLimit(v1, none); src != "cgroup" || l != 192<<20 {
		t.Fatalf("cgroup v1 of 256 MiB: %d from %s, want 192 MiB", l, src)
	}
	// v1's "unlimited".
	write(v1, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
	if l, src := memoryLimit(v1, none); src != "default" || l != defaultMemoryLimit {
		t.Fatalf("cgroup v1 unlimited: %d from %s", l, src)
	}
	// No cgroup files at all.
	if l, src := memoryLimit(t.TempDir(), none); src != "default" || l != defaultMemoryLimit {
		t.Fatalf("no cgroup: %d from %s", l, src)
	}
}

func TestLimitFollowsTheLiveHeap(t *testing.T) {
	const floor = defaultMemoryLimit
	for _, c := range []struct{ live, other, want int64 }{
		{10 << 20, 4 << 20, floor},                      // a small heap: the floor
		{16 << 20, 12 << 20, 16<<20 + 12<<20 + floor/4}, // the runtime's own memory counts: room to allocate
		{28 << 20, 4 << 20, 28<<20 + 4<<20 + floor/4},   // above the floor
		{400 << 20, 8 << 20, 400<<20 + 8<<20 + 100<<20}, // a large deployment: a quarter more
	} {
		if got := limitFor(floor, c.live, c.other); got != c.want {
			t.Errorf("live %d MiB: limit %d MiB, want %d MiB", c.live>>20, got>>20, c.want>>20)
		}
	}
}
