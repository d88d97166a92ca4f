package stack

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group, so signals reach
// anything it starts, and makes the kernel SIGKILL it when the thread that
// started it exits (the Go runtime does not retire threads of a program
// that never locks one), so a crashed run leaves no orphan.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return cmd.Process.Signal(sig)
	}
	return nil
}
