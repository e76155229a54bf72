package client

import (
	"runtime"
	"strings"
)

// CollectTelemetry describes the machine the way the reference MCP server
// does: OS name and version, RAM, the size of the filesystem holding dir, and
// whether that filesystem sits on an SSD or an HDD. Anything it cannot find
// out is left nil, so the server shows "not reported".
func CollectTelemetry(dir string) Telemetry {
	var t Telemetry
	name := osName(runtime.GOOS)
	t.OSName = &name
	collectPlatform(&t, dir)
	return t
}

// osName is the OS as Python's platform.system() names it.
func osName(goos string) string {
	switch goos {
	case "linux":
		return "Linux"
	case "darwin":
		return "Darwin"
	case "windows":
		return "Windows"
	case "freebsd":
		return "FreeBSD"
	case "openbsd":
		return "OpenBSD"
	case "netbsd":
		return "NetBSD"
	}
	if goos == "" {
		return goos
	}
	return strings.ToUpper(goos[:1]) + goos[1:]
}

// storageType maps a rotational flag ("0" or "1") to SSD or HDD.
func storageType(rotational string) (string, bool) {
	switch strings.TrimSpace(rotational) {
	case "0":
		return "SSD", true
	case "1":
		return "HDD", true
	}
	return "", false
}

func ptr[T any](v T) *T { return &v }
