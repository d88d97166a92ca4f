//go:build !linux

package stack

import (
	"os/exec"
	"syscall"
)

// setProcAttr does nothing where the kernel has no parent-death signal;
// Stack.Stop still stops every child.
func setProcAttr(*exec.Cmd) {}

// signalGroup signals the child itself.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		return cmd.Process.Kill()
	}
	return cmd.Process.Signal(sig)
}
