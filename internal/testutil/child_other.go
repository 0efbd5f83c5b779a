//go:build !linux

package testutil

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life
// to its parent's: there, a test binary that dies leaves its children.
func dieWithParent(*exec.Cmd) {}
