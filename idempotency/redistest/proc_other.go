//go:build !linux

package redistest

import "os/exec"

// setParentDeathSignal is a no-op where the kernel has no parent-death
// signal; Stop in tb.Cleanup still stops the server.
func setParentDeathSignal(*exec.Cmd) {}
