package testutil

import "os/exec"

// DieWithTest makes cmd's process end with the test binary that started
// it, however that ends. A test stops its servers in t.Cleanup, but a test
// binary that go test kills at its -timeout, or that dies of a panic, runs
// no cleanup: a Caddy or InfluxDB left behind keeps its ports, and the
// next run's servers cannot listen. Call it before cmd.Start.
func DieWithTest(cmd *exec.Cmd) { dieWithParent(cmd) }
