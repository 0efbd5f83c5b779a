package testutil

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to kill the child when its parent exits
// (PR_SET_PDEATHSIG). The kernel ties the signal to the thread that
// forked the child, not the process; the Go runtime ends a thread only
// when a goroutine locked to it (runtime.LockOSThread) returns, which
// these tests never do. The setting survives the child's own exec (ip
// netns exec, chrt), so the program they run dies too.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
