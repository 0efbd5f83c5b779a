package core

import (
	"testing"
	"time"
)

// TestPromptAcksKeepRTT: two ends exchange reports, the second answering
// each 20 ms after it arrives, as the two ends of a UDP test both ways
// report on grids offset from each other. Without promptAcks the second
// end's kernel holds its acknowledgement until the answer goes (the
// connection looks interactive), so the first end's tcpRTT is the 20 ms
// wait, which is not the path's; with it the acknowledgement goes when the
// report is read, and tcpRTT stays the path's (loopback: microseconds,
// plus how long the reader took to wake).
func TestPromptAcksKeepRTT(t *testing.T) {
	t.Parallel()
	a, b := tcpPair(t)
	acks := newPromptAcks(b)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		buf := make([]byte, 64)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			acks.again()
			time.Sleep(20 * time.Millisecond)
			if _, err := b.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 36), make([]byte, 64)
	for range 40 {
		a.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	rtt := tcpRTT(a)
	a.Close()
	<-answered
	if rtt <= 0 || rtt > 10*time.Millisecond {
		t.Errorf("tcpRTT %v with reports answered 20 ms after they arrive, want the path's (under 10 ms)", rtt)
	}
	t.Logf("tcpRTT %v", rtt)
}
