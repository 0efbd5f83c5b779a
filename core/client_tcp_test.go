package core

import (
	"testing"
	"time"
)

// TestStatusDue checks when the client looks for the server's interleaved
// status messages: at once, then not until statusLull after the last one.
func TestStatusDue(t *testing.T) {
	t.Parallel()
	var d statusDue
	t0 := time.Now()
	if !d.now(t0) {
		t.Fatal("no search before the first status message")
	}
	d.seen(t0)
	if d.now(t0.Add(statusLull / 2)) {
		t.Fatal("search during the lull after a status message")
	}
	if !d.now(t0.Add(statusLull)) || !d.now(t0.Add(2*statusLull)) {
		t.Fatal("no search once the next status message is due")
	}
}
