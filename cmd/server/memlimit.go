package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// defaultMemoryLimit is the soft memory limit when neither GOMEMLIMIT nor a
// cgroup limit says otherwise: room for the verification cache of 10,000
// agents and keys (about 9 MiB) and the requests in flight, low enough that
// garbage (the runtime frees, but keeps mapped, what a burst leaves) goes
// back to the system soon. The binary's own pages (about 27 MiB resident)
// come on top. It rises with the live heap (followLiveHeap), so a large
// deployment is never held to it.
const defaultMemoryLimit = 32 << 20

// cgroupShare is the part of a container's memory limit the Go heap may use:
// the rest is for the binary, thread stacks outside Go and, when it runs in
// the same container, the private PostgreSQL.
const cgroupShare = 0.75

// memoryLimit is the soft limit the server sets and where it came from:
// "GOMEMLIMIT" (limit 0: the runtime already applied it), "cgroup" or
// "default". root is "/" except in tests.
func memoryLimit(root string, lookup func(string) (string, bool)) (int64, string) {
	if v, ok := lookup("GOMEMLIMIT"); ok && v != "" {
		return 0, "GOMEMLIMIT"
	}
	if l := cgroupMemoryLimit(root); l > 0 {
		return int64(float64(l) * cgroupShare), "cgroup"
	}
	return defaultMemoryLimit, "default"
}

// cgroupMemoryLimit returns this process's cgroup memory limit (v2
// memory.max, else v1 memory.limit_in_bytes), or 0 when there is none.
func cgroupMemoryLimit(root string) int64 {
	var v2, v1 string
	if f, err := os.Open(filepath.Join(root, "proc/self/cgroup")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case strings.Contains(","+parts[1]+",", ",memory,"):
				v1 = parts[2]
			}
		}
		f.Close()
	}
	read := func(path string) int64 {
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			return 0
		}
		s := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(s, 10, 64)
		// "max", or v1's "no limit" (a page-rounded 2^63-1).
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	// The process's own cgroup, then the mount's root (inside a container the
	// mount shows the container's cgroup as the root).
	var candidates []string
	if v2 != "" {
		candidates = append(candidates, filepath.Join("sys/fs/cgroup", v2, "memory.max"))
	}
	candidates = append(candidates, "sys/fs/cgroup/memory.max")
	if v1 != "" {
		candidates = append(candidates, filepath.Join("sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"))
	}
	candidates = append(candidates, "sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, p := range candidates {
		if n := read(p); n > 0 {
			return n
		}
	}
	return 0
}

// setMemoryLimit applies the server's soft memory limit and returns it and
// its source. With the default, a goroutine keeps it above the live heap
// (followLiveHeap) until ctx ends: the default is there to return garbage to
// the system, not to hold a large live heap to it.
func setMemoryLimit(ctx context.Context) (int64, string) {
	limit, source := memoryLimit("/", os.LookupEnv)
	if limit == 0 {
		return debug.SetMemoryLimit(-1), source
	}
	debug.SetMemoryLimit(limit)
	if source == "default" {
		go followLiveHeap(ctx, limit)
	}
	return limit, source
}

// followLiveHeap sets the limit, every 5 s, to what the runtime holds besides
// heap objects (stacks, its own metadata, fragmentation) plus the live heap
// plus room to allocate: a quarter of the live heap, at least floor/4; never
// below floor. The limit counts all of the runtime's memory, so without the
// first term a live heap of half the floor left the collector a few MiB to
// allocate in and it ran without pause.
func followLiveHeap(ctx context.Context, floor int64) {
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	current := floor
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		var v [5]int64
		for i, s := range sample {
			if s.Value.Kind() != metrics.KindUint64 {
				return
			}
			v[i] = int64(s.Value.Uint64())
		}
		live, other := v[0], v[1]-v[2]-v[3]-v[4]
		want := limitFor(floor, live, other)
		if want != current {
			debug.SetMemoryLimit(want)
			current = want
		}
	}
}

// limitFor is the soft limit for a live heap of live bytes when the runtime
// holds other bytes besides heap objects.
func limitFor(floor, live, other int64) int64 {
	return max(floor, other+live+max(floor/4, live/4))
}
