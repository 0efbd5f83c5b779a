package core

import (
	"testing"
	"time"
)

// TestPromptAcksKeepRTT: two ends exchange reports, the second answering
// each 20 ms after it arrives, as the two ends of a UDP test both ways
// report on grids offset from each other. Without promptAcks the second
// end's kernel holds its acknowledgement until the answer goes (the
// connection looks interactive), so the first end's tcpRTT holds the 20 ms
// wait, which is not the path's; with it the acknowledgement goes when the
// report is read, and tcpRTT is the path's plus how long the reader took
// to wake.
//
// The wake-up is measured, not assumed: on a loaded machine (the race
// detector, the rest of the suite) it alone can take several milliseconds.
// The test smooths it as the kernel smooths its RTT samples (7/8 old, 1/8
// new) and asks that tcpRTT stay within 10 ms of that, which holds however
// slow the wake-ups are and fails when the answer's 20 ms is in it.
func TestPromptAcksKeepRTT(t *testing.T) {
	t.Parallel()
	const answerAfter = 20 * time.Millisecond
	a, b := tcpPair(t)
	acks := newPromptAcks(b)
	sent := make(chan time.Time, 1)
	woke := make(chan time.Duration, 1)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		buf := make([]byte, 64)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			woke <- time.Since(<-sent)
			acks.again()
			time.Sleep(answerAfter)
			if _, err := b.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 36), make([]byte, 64)
	var wake time.Duration // smoothed as the kernel smooths RTT samples
	for i := range 40 {
		a.SetDeadline(time.Now().Add(5 * time.Second))
		sent <- time.Now()
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Read(buf); err != nil {
			t.Fatal(err)
		}
		w := <-woke
		if i == 0 {
			wake = w
		} else {
			wake += (w - wake) / 8
		}
	}
	rtt := tcpRTT(a)
	a.Close()
	<-answered
	t.Logf("tcpRTT %v, the reader's smoothed wake-up %v", rtt, wake)
	if rtt <= 0 || rtt > wake+answerAfter/2 {
		t.Errorf("tcpRTT %v with reports answered %v after they arrive and read after %v, want the path's (under %v)",
			rtt, answerAfter, wake, wake+answerAfter/2)
	}
}
