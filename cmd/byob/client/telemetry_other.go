//go:build !linux && !darwin

package client

// collectPlatform knows only the OS name on this platform.
func collectPlatform(t *Telemetry, dir string) {}
