package client

import "syscall"

func collectPlatform(t *Telemetry, dir string) {
	if v, err := syscall.Sysctl("kern.osrelease"); err == nil && v != "" {
		t.OSVersion = &v
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(dir, &fs) == nil && fs.Blocks > 0 {
		t.StorageBytes = ptr(int64(fs.Blocks) * int64(fs.Bsize))
	}
	// RAM and the disk kind need sysctl and IOKit calls outside the standard
	// library; they are left out ("not reported").
}
