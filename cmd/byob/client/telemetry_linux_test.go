package client

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStorageTypeFromSysBlock(t *testing.T) {
	root := t.TempDir()
	old := sysRoot
	sysRoot = root
	t.Cleanup(func() { sysRoot = old })
	disk := func(name, rot string) {
		dir := filepath.Join(root, "block", name, "queue")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "rotational"), []byte(rot+"\n"), 0o644)
	}
	disk("loop0", "1")
	disk("nvme0n1", "0")
	if k, ok := rotationalOf(0); !ok || k != "SSD" {
		t.Fatalf("one SSD: %q %v", k, ok)
	}
	disk("sda", "1")
	if _, ok := rotationalOf(0); ok {
		t.Fatal("disks disagree, yet a kind was reported")
	}

	// A partition's own device: /sys/dev/block/8:1 → …/block/sdb/sdb1.
	root = t.TempDir()
	sysRoot = root
	part := filepath.Join(root, "devices", "block", "sdb", "sdb1")
	os.MkdirAll(part, 0o755)
	os.WriteFile(filepath.Join(part, "partition"), []byte("1\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "devices", "block", "sdb", "queue"), 0o755)
	os.WriteFile(filepath.Join(root, "devices", "block", "sdb", "queue", "rotational"), []byte("1\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "dev", "block"), 0o755)
	os.Symlink(part, filepath.Join(root, "dev", "block", "8:1"))
	if k, ok := rotationalOf(8<<8 | 1); !ok || k != "HDD" {
		t.Fatalf("partition on HDD: %q %v", k, ok)
	}
}
