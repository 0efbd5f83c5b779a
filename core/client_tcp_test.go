package core

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/btest-go/btest/core/wire"
)

// TestStatusWatch checks that the client finds an interleaved status
// message, skips the search until the next one is due, and then finds it.
func TestStatusWatch(t *testing.T) {
	var cpu atomic.Int32
	cpu.Store(-1)
	w := statusWatch{cpu: &cpu}
	chunk := func(seq uint32, load uint8) []byte {
		b := make([]byte, 4096)
		f := wire.Status{CPU: load, Seq: seq, Bytes: 1000}.Marshal()
		copy(b[2048:], f[:])
		return b
	}
	w.scan(chunk(1, 40))
	if got := cpu.Load(); got != 40 {
		t.Fatalf("first status: remote cpu %d, want 40", got)
	}
	w.scan(chunk(2, 50))
	if got := cpu.Load(); got != 40 {
		t.Fatalf("status searched for during the lull: remote cpu %d, want 40", got)
	}
	w.after = time.Now().Add(-time.Millisecond) // the next one is due
	w.scan(chunk(3, 60))
	if got := cpu.Load(); got != 60 {
		t.Fatalf("status after the lull: remote cpu %d, want 60", got)
	}

	// A stream of nothing but status messages: every one counts.
	framed := statusWatch{sc: wire.StatusScanner{Framed: true}, cpu: &cpu}
	for i, load := range []uint8{10, 20} {
		f := wire.Status{CPU: load, Seq: uint32(i + 1)}.Marshal()
		framed.scan(f[:])
		if got := cpu.Load(); got != int32(load) {
			t.Fatalf("framed status %d: remote cpu %d, want %d", i, got, load)
		}
	}
}
