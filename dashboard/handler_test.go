package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
)

func testFacts() Facts {
	return FactsOf(core.ServerFacts{
		Listeners: []string{"127.0.0.1:2000"}, Auth: core.AuthECSRP5, Users: 1,
		MaxSessions: 10, MaxSessionsPerIP: 4, MaxConnections: 100, MaxDuration: 10 * time.Minute,
		MaxTxRate: 1e9, UDPPortFirst: 2001, UDPPortLast: 2999, UDPPortsInUse: 1,
	})
}

// get fetches path from srv and returns the body; it fails on other
// statuses than want.
func get(t *testing.T, srv *httptest.Server, path string, want int) (string, http.Header) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d: %s", path, resp.Status, want, b)
	}
	return string(b), resp.Header
}

// feed runs one UDP test and one refusal through obs.
func feed(obs *core.Observer, c *clock) {
	i := info(7, "[2001:db8::5]:40000")
	obs.SessionStarted(i)
	c.add(time.Second)
	obs.SessionInterval(i, core.IntervalStats{Elapsed: time.Second, TxBps: 8e6, RxBps: 4e6, TxBytes: 1e6, RxBytes: 5e5, LostPackets: 1, LostTotal: 1})
	obs.Refused(netip.MustParseAddr("203.0.113.9"), core.RefusedAuthFailed)
}

func TestStateJSON(t *testing.T) {
	t.Parallel()
	s, c := newTestState(t)
	feed(s.Observer(), c)
	s.tick()
	srv := testPorts.HTTPServer(t, http.StripPrefix("/btest", NewHandler(s, testFacts)))
	defer srv.Close()
	body, hdr := get(t, srv, "/btest/api/state", http.StatusOK)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("state is not JSON: %v\n%s", err, body)
	}
	for _, k := range []string{"now", "server", "active", "recent", "recent_seq", "refusals", "totals", "throughput"} {
		if _, ok := m[k]; !ok {
			t.Errorf("state has no %q: %s", k, body)
		}
	}
	var snap Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	if f := snap.Server; f.Auth != "ecsrp5" || f.Users != 1 || f.Limits.MaxSessions != 10 || f.Limits.MaxDurationS != 600 ||
		f.Limits.MaxTxRateBps != 1e9 || f.UDPPorts != (UDPPorts{2001, 2999, 1}) || f.Version == "" || len(f.Listeners) != 1 {
		t.Errorf("server facts %+v", f)
	}
	if len(snap.Active) != 1 {
		t.Fatalf("active %+v", snap.Active)
	}
	a := snap.Active[0]
	if a.Remote != "[2001:db8::5]:40000" || a.User != "alice" || a.Proto != "udp" || a.Direction != "both" ||
		a.Connections != 2 || a.TxBps != 8e6 || a.RxBps != 4e6 || a.ElapsedS != 1 || a.LostPackets == nil || *a.LostPackets != 1 ||
		a.History == nil || len(a.History.T) != 1 || a.History.Tx[0] != 8e6 {
		t.Errorf("active test %+v history %+v", a, a.History)
	}
	if len(snap.Recent) != 1 || snap.Recent[0].Reason != core.RefusedAuthFailed || snap.Refusals[core.RefusedAuthFailed] != 1 {
		t.Errorf("recent %+v refusals %v", snap.Recent, snap.Refusals)
	}
	if len(snap.Throughput.T) != 1 || snap.Throughput.Tx[0] != 8e6 || snap.Throughput.Rx[0] != 4e6 {
		t.Errorf("throughput %+v", snap.Throughput)
	}
}

func TestPageUnderPrefix(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	h := NewHandler(s, testFacts)
	// Mounted without stripping the prefix, as a Caddy route does.
	srv := testPorts.HTTPServer(t, h)
	defer srv.Close()
	page, hdr := get(t, srv, "/btest/", http.StatusOK)
	if !strings.Contains(hdr.Get("Content-Type"), "text/html") || hdr.Get("Content-Security-Policy") == "" {
		t.Errorf("page headers %v", hdr)
	}
	for _, ref := range []string{`href="assets/style.css"`, `src="assets/app.js"`, `src="assets/uplot/uPlot.iife.min.js"`, `href="assets/uplot/uPlot.min.css"`} {
		if !strings.Contains(page, ref) {
			t.Errorf("page does not refer to %s", ref)
		}
	}
	if strings.Contains(page, `="/`) {
		t.Error("page has an absolute URL; it must work under any prefix")
	}
	js, _ := get(t, srv, "/btest/assets/app.js", http.StatusOK)
	for _, u := range []string{"'api/state'", "'api/events'"} {
		if !strings.Contains(js, u) {
			t.Errorf("app.js does not use the relative URL %s", u)
		}
	}
	if lic, _ := get(t, srv, "/btest/assets/uplot/LICENSE", http.StatusOK); !strings.Contains(lic, "MIT License") {
		t.Error("uPlot's licence is not served")
	}
	get(t, srv, "/btest/assets/nope.js", http.StatusNotFound)
	get(t, srv, "/btest/assets/../handler.go", http.StatusNotFound)
	get(t, srv, "/btest/elsewhere", http.StatusNotFound)
	resp, err := srv.Client().Post(srv.URL+"/btest/api/state", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
}

// sse reads Server-Sent Events messages.
type sse struct{ r *bufio.Reader }

// next returns the next message's event name and data.
func (s sse) next() (name, data string, err error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if name != "" || data != "" {
				return name, data, nil
			}
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		case strings.HasPrefix(line, "retry: "):
		default:
			return "", "", fmt.Errorf("not an SSE line: %q", line)
		}
	}
}

// expect reads the next message, which must be event name, into v.
func (s sse) expect(t *testing.T, name string, v any) {
	t.Helper()
	got, data, err := s.next()
	if err != nil {
		t.Fatalf("reading event %s: %v", name, err)
	}
	if got != name {
		t.Fatalf("event %q (%s), want %q", got, data, name)
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("event %s: %v: %s", name, err, data)
	}
}

func openEvents(t *testing.T, ctx context.Context, srv *httptest.Server, h *Handler) sse {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return sse{bufio.NewReader(resp.Body)}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	s, c := newTestState(t)
	h := NewHandler(s, testFacts)
	srv := testPorts.HTTPServer(t, h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := openEvents(t, ctx, srv, h)
	var f Facts
	ev.expect(t, "facts", &f)
	if f.Auth != "ecsrp5" || f.UDPPorts.InUse != 1 {
		t.Errorf("facts %+v", f)
	}
	obs := s.Observer()
	i := info(3, "127.0.0.1:5555")
	obs.SessionStarted(i)
	var a Active
	ev.expect(t, "start", &a)
	if a.ID == "" || a.Remote != "127.0.0.1:5555" || a.Proto != "udp" || a.History == nil {
		t.Errorf("start %+v", a)
	}
	c.add(time.Second)
	obs.SessionInterval(i, core.IntervalStats{Elapsed: time.Second, TxBps: 3e6, RxBps: 2e6})
	s.tick()
	var tk Tick
	ev.expect(t, "tick", &tk)
	if tk.TxBps != 3e6 || tk.RxBps != 2e6 || len(tk.Active) != 1 || tk.Active[0].ID != a.ID || tk.Active[0].TxBps != 3e6 || tk.Active[0].History != nil {
		t.Errorf("tick %+v", tk)
	}
	obs.SessionEnded(i, core.Summary{Duration: 2 * time.Second, TxBps: 3e6, RxBps: 2e6, TxBytes: 75e4, RxBytes: 5e5}, nil)
	var r Recent
	ev.expect(t, "end", &r)
	if r.ID != a.ID || r.Result != "ok" || r.DurationS != 2 || r.TxBytes != 75e4 || r.Seq != 1 {
		t.Errorf("end %+v", r)
	}
	// Facts are sent again after a tick only when they changed.
	s.tick()
	ev.expect(t, "tick", &tk)
	if tk.RecentSeq != 1 || len(tk.Active) != 0 || tk.Totals.Sessions != 1 {
		t.Errorf("tick after the end %+v", tk)
	}
	obs.SessionStarted(info(4, "127.0.0.1:5556"))
	ev.expect(t, "start", &a)
}

// The server's Shutdown, which waits for active requests, ends the open
// event streams instead of waiting for their readers to leave; so does
// Close, and a stream opened after it ends after its first facts.
func TestStreamsEnd(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	h := NewHandler(s, testFacts)
	srv := testPorts.HTTPServer(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ended := func(ev sse) {
		t.Helper()
		var f Facts
		ev.expect(t, "facts", &f)
		if name, data, err := ev.next(); err == nil {
			t.Fatalf("the stream goes on: %q %s", name, data)
		}
	}

	ev := openEvents(t, ctx, srv, h)
	done := make(chan error, 1)
	go func() {
		sctx, stop := context.WithTimeout(ctx, 5*time.Second)
		defer stop()
		done <- srv.Config.Shutdown(sctx)
	}()
	if err := <-done; err != nil {
		t.Fatalf("shutdown with an event stream open: %v", err)
	}
	ended(ev)

	// The handler in another server is closed now, like one whose
	// config was replaced.
	srv2 := testPorts.HTTPServer(t, h)
	ended(openEvents(t, ctx, srv2, h))

	h2 := NewHandler(s, testFacts)
	srv3 := testPorts.HTTPServer(t, h2)
	ev = openEvents(t, ctx, srv3, h2)
	var f Facts
	ev.expect(t, "facts", &f)
	h2.Close()
	if name, data, err := ev.next(); err == nil {
		t.Fatalf("the stream goes on after Close: %q %s", name, data)
	}
}

// A reader that stops reading is dropped, its buffered messages with it;
// the publisher never waits.
func TestStalledReaderDropped(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	h := NewHandler(s, testFacts)
	h.writeTimeout = time.Second
	returned := make(chan struct{}, 1)
	srv := testPorts.HTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for open, _ := s.hub.counts(); open != 1; open, _ = s.hub.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the event stream never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 64 MiB in 256 KiB messages: more than any socket buffers hold.
	msg := []byte("event: tick\ndata: " + strings.Repeat("x", 256<<10) + "\n\n")
	start := time.Now()
	for range 256 {
		s.hub.publish(msg)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publishing to a stalled reader took %v; it must not wait", d)
	}
	if open, dropped := s.hub.counts(); open != 0 || dropped != 1 {
		t.Fatalf("after the flood: %d streams open, %d dropped; want 0 and 1", open, dropped)
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of the stalled reader did not return")
	}
	// The dashboard goes on for others.
	if _, err := srv.Client().Get(srv.URL + "/api/state"); err != nil {
		t.Fatal(err)
	}
}

func TestTooManyStreams(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	for range maxSubscribers {
		if s.hub.subscribe() == nil {
			t.Fatal("subscribe refused below the cap")
		}
	}
	srv := testPorts.HTTPServer(t, NewHandler(s, testFacts))
	defer srv.Close()
	get(t, srv, "/api/events", http.StatusServiceUnavailable)
}

func FuzzHandlerPath(f *testing.F) {
	for _, p := range []string{"/", "/btest/", "/api/state", "/x/assets/app.js", "/assets/../../etc/passwd", "/assets/", "/assets/uplot/", "//assets//app.js", "/assets/uplot/LICENSE"} {
		f.Add(p)
	}
	s := newState(time.Now)
	close(s.done)
	h := NewHandler(s, testFacts)
	f.Fuzz(func(t *testing.T, p string) {
		if strings.HasSuffix(p, "/api/events") {
			return // a stream; covered by TestEvents
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q: status %d", p, w.Code)
		}
		if w.Code == http.StatusOK && strings.Contains(w.Body.String(), "package dashboard") {
			t.Fatalf("%q served Go source", p)
		}
	})
}
