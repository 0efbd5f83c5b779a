package testutil

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// isolatedEnv names the test that a child process of Isolate runs.
const isolatedEnv = "BTEST_ISOLATED"

// slotEnv is the child's slot, which gives it a share of the package's
// ports of its own (see Ports).
const slotEnv = "BTEST_ISOLATED_SLOT"

// isolatedSlots is how many isolated tests of a package run at once.
const isolatedSlots = 8

// slots hands out 1..isolatedSlots to the running children.
var slots = func() chan int {
	c := make(chan int, isolatedSlots)
	for i := 1; i <= isolatedSlots; i++ {
		c <- i
	}
	return c
}()

// Isolate runs the calling test alone in a process of its own: the test
// binary again, with -test.run naming only this test. A test that
// measures its whole process (memory, goroutines, descriptors, a leak
// check of its own goroutines) would otherwise have to run before the
// package's parallel tests, one at a time; in a child of its own, what it
// measures is its own, and it runs beside the others.
//
// In the parent Isolate marks the test parallel, runs the child, reports
// its output and result, and returns true: the test then returns. In the
// child it returns false and the test goes on to do its work.
func Isolate(t *testing.T) (parent bool) {
	t.Helper()
	if os.Getenv(isolatedEnv) == t.Name() {
		return false
	}
	t.Parallel()
	slot := <-slots
	defer func() { slots <- slot }()

	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-5*time.Second))
		defer cancel()
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("isolate: %v", err)
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), isolatedEnv+"="+t.Name(), slotEnv+"="+strconv.Itoa(slot))
	DieWithTest(cmd)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("ran alone in a process of its own for %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	switch {
	case err != nil:
		t.Errorf("the isolated run failed: %v", err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()+" "):
		t.Skip("skipped in the isolated run")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()+" "):
		t.Errorf("the isolated run did not report %s as passed", t.Name())
	}
	return true
}

// isolatedSlot is this process's slot when Isolate started it, else 0.
func isolatedSlot() int {
	n, _ := strconv.Atoi(os.Getenv(slotEnv))
	if n < 1 || n > isolatedSlots {
		return 0
	}
	return n
}
