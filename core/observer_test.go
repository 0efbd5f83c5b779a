package core

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
)

// TestJoinObservers: every non-nil func of every observer is called, in
// order; nil observers and nil funcs are skipped.
func TestJoinObservers(t *testing.T) {
	t.Parallel()
	var calls []string
	a := &Observer{
		SessionStarted: func(SessionInfo) { calls = append(calls, "a.start") },
		SessionEnded:   func(SessionInfo, Summary, error) { calls = append(calls, "a.end") },
	}
	b := &Observer{
		SessionStarted:  func(SessionInfo) { calls = append(calls, "b.start") },
		SessionInterval: func(SessionInfo, IntervalStats) { calls = append(calls, "b.interval") },
		Refused:         func(netip.Addr, RefusalReason) { calls = append(calls, "b.refused") },
	}
	if JoinObservers() != nil || JoinObservers(nil, nil) != nil {
		t.Error("joining nothing gives an observer")
	}
	if JoinObservers(nil, a) != a {
		t.Error("joining one observer wraps it")
	}
	o := JoinObservers(a, nil, b)
	o.sessionStarted(SessionInfo{})
	o.sessionInterval(SessionInfo{}, IntervalStats{})
	o.sessionEnded(SessionInfo{}, Summary{}, errors.New("x"))
	o.refused(netip.Addr{}, RefusedAuthFailed)
	want := []string{"a.start", "b.start", "b.interval", "a.end", "b.refused"}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("calls %v, want %v", calls, want)
		}
	}
	var none *Observer
	none.sessionStarted(SessionInfo{}) // a nil observer is a no-op
	(&Observer{}).refused(netip.Addr{}, RefusedAuthFailed)
}

// TestTypedValuesJSON: Proto and Direction travel as names.
func TestTypedValuesJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Summary{Proto: ProtoUDP, Direction: Both})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Proto, Direction string }
	if err := json.Unmarshal(b, &back); err != nil || back.Proto != "udp" || back.Direction != "both" {
		t.Fatalf("%s -> %+v, %v", b, back, err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil || s.Proto != ProtoUDP || s.Direction != Both {
		t.Fatalf("round trip %+v, %v", s, err)
	}
	if _, err := json.Marshal(Summary{Proto: 7}); err == nil {
		t.Error("an unknown proto marshals")
	}
	if err := json.Unmarshal([]byte(`{"Proto":"sctp"}`), &s); err == nil {
		t.Error("an unknown proto unmarshals")
	}
}
