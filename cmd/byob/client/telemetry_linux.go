package client

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sysRoot is where sysfs is read (a test points it elsewhere).
var sysRoot = "/sys"

func collectPlatform(t *Telemetry, dir string) {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			t.OSVersion = &v
		}
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil && si.Totalram > 0 {
		unit := uint64(si.Unit)
		if unit == 0 {
			unit = 1
		}
		t.RAMBytes = ptr(int64(uint64(si.Totalram) * unit))
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(dir, &fs) == nil && fs.Blocks > 0 {
		t.StorageBytes = ptr(int64(fs.Blocks) * int64(fs.Bsize))
	}
	var st syscall.Stat_t
	dev := uint64(0)
	if syscall.Stat(dir, &st) == nil {
		dev = uint64(st.Dev)
	}
	if kind, ok := rotationalOf(dev); ok {
		t.StorageType = &kind
	}
}

// rotationalOf finds SSD or HDD for the block device dev through
// /sys/dev/block/<major>:<minor> (a partition's disk is its parent). When
// the filesystem has no block device of its own (overlay, tmpfs, a
// container), it falls back to the physical disks in /sys/block/*: their
// queue/rotational flags decide when they all agree.
func rotationalOf(dev uint64) (string, bool) {
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	if major != 0 {
		p, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev/block", strconv.FormatUint(major, 10)+":"+strconv.FormatUint(minor, 10)))
		if err == nil {
			if _, err := os.Stat(filepath.Join(p, "partition")); err == nil {
				p = filepath.Dir(p)
			}
			if b, err := os.ReadFile(filepath.Join(p, "queue/rotational")); err == nil {
				return storageType(string(b))
			}
		}
	}
	disks, _ := filepath.Glob(filepath.Join(sysRoot, "block/*/queue/rotational"))
	kind := ""
	for _, f := range disks {
		name := filepath.Base(filepath.Dir(filepath.Dir(f)))
		if virtualDisk(name) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		k, ok := storageType(string(b))
		if !ok || (kind != "" && k != kind) {
			return "", false
		}
		kind = k
	}
	return kind, kind != ""
}

func virtualDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "fd", "nbd", "md", "dm-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
