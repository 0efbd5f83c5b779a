package testutil

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// attackerEnv tells a child process of AttackerProcess which attack to
// run: "attack,address,count".
const attackerEnv = "BTEST_ATTACKER"

// IdleFlood keeps n connections from 127.0.0.1 open that read HELLO and
// then say nothing, reconnecting whenever the server closes one, until
// stop is closed. It returns a func that waits for the flood to end and
// returns how many connections it made.
func IdleFlood(addr string, n int, stop <-chan struct{}) func() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	made := 0
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				made++
				mu.Unlock()
				closed := make(chan struct{})
				go func() {
					io.Copy(io.Discard, c) // HELLO, then wait for the close
					close(closed)
				}()
				select {
				case <-stop:
				case <-closed:
					// Come back, as an attacker keeping 1,000
					// connections open would (not at once: a
					// connect flood on a shared machine only
					// measures its CPU).
					time.Sleep(time.Second)
				}
				c.Close()
				<-closed
			}
		})
	}
	return func() int { wg.Wait(); return made }
}

// AttackerProcess runs an attack ("idle": IdleFlood with n connections)
// on addr in a child process, as a real attacker is another program: the
// test binary again, running only the package's TestAttackerProcess,
// which calls RunAttacker. In the test's own process the attack's
// thousand goroutines would compete with the legitimate client's (and,
// in core, the server's) in one Go scheduler, which on a loaded machine
// measures the scheduler, not the server. It returns a func that stops
// the attack and returns the child's report line; the test's cleanup
// calls it too.
func AttackerProcess(t *testing.T, attack, addr string, n int) func() string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttackerProcess$", "-test.v")
	DieWithTest(cmd)
	cmd.Env = append(os.Environ(), attackerEnv+"="+attack+","+addr+","+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "attacker:") {
				return strings.TrimSpace(l)
			}
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// RunAttacker is the body of a package's TestAttackerProcess: it does
// nothing (skips) unless AttackerProcess started this process, and then
// attacks until its stdin closes.
func RunAttacker(t *testing.T) {
	spec := os.Getenv(attackerEnv)
	if spec == "" {
		t.Skip("only run as the child of an attack test")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		t.Fatalf("%s=%q, want attack,address,count", attackerEnv, spec)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatalf("%s: count: %v", attackerEnv, err)
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	switch parts[0] {
	case "idle":
		t.Logf("attacker: %d idle connections made", IdleFlood(parts[1], n, stop)())
	default:
		t.Fatalf("unknown attack %q", parts[0])
	}
}
