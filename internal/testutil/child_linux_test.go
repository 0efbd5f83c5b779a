package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dyingParentEnv makes TestDieWithTest's child act as a test binary that
// starts a long-running program and then dies without cleaning up.
const dyingParentEnv = "BTEST_DYING_PARENT"

// TestDieWithTest: a program started with DieWithTest ends when the
// process that started it is killed.
func TestDieWithTest(t *testing.T) {
	if os.Getenv(dyingParentEnv) != "" {
		sleep := exec.Command("sleep", "60")
		DieWithTest(sleep)
		if err := sleep.Start(); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("child " + strconv.Itoa(sleep.Process.Pid) + "\n")
		time.Sleep(time.Minute) // until the test kills this process
		return
	}
	t.Parallel()
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep(1)")
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestDieWithTest$", "-test.count=1")
	parent.Env = append(os.Environ(), dyingParentEnv+"=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Wait()
	defer parent.Process.Kill()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "child "); ok {
				line <- s
				return
			}
		}
		close(line)
	}()
	var pid int
	select {
	case s, ok := <-line:
		if pid, err = strconv.Atoi(s); !ok || err != nil {
			t.Fatalf("no child pid from the dying parent: %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dying parent did not start its child in 30 s")
	}
	parent.Process.Kill()
	parent.Wait()
	// Poll, since the kernel signals the child as the parent exits.
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still runs 10 s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether pid is a live process. A killed orphan stays a
// zombie until whoever adopted it reaps it, which can take a while.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	i := strings.LastIndex(string(stat), ") ")
	return i >= 0 && !strings.HasPrefix(string(stat[i+2:]), "Z")
}
