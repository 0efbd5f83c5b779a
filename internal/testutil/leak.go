package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakOptions ignore goroutines that outlive a test by design: the idle
// keep-alive connections of http.DefaultTransport that end-to-end tests
// use to talk to Caddy or InfluxDB.
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
}

// leakWait bounds how long CheckLeaks waits for goroutines to finish.
const leakWait = 10 * time.Second

// CheckLeaks fails t at cleanup when goroutines that were not running
// before it remain (goleak retries for a while, so a goroutine that is
// still finishing is not reported). Not for parallel tests: goleak sees
// every goroutine of the process; use VerifyTestMain for those packages.
func CheckLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// A session's goroutines finish a little after its test returns,
		// later on a loaded machine: look again for up to leakWait.
		deadline := time.Now().Add(leakWait)
		for {
			err := goleak.Find(append(leakOptions, before)...)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutine leak: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// VerifyTestMain runs a package's tests and fails the run when goroutines
// are left over at the end, for packages whose tests run in parallel.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// Buffer is a bytes.Buffer that a writer and a reader goroutine may use at
// once (a process's stderr in one, the test in the other).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
