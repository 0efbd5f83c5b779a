package caddymodule

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/dashboard"
)

func TestDashboardCaddyfileErrors(t *testing.T) {
	for body, want := range map[string]string{
		"btest_dashboard /btest/* extra":        "wrong argument count",
		"btest_dashboard {\n\t\tcolor red\n\t}": "btest_dashboard takes no options, got 'color'",
	} {
		cf := "{\n\tbtest {\n\t\tauth none\n\t}\n}\n:8080 {\n\t" + body + "\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

// Without the btest app the handler fails at provisioning, instead of
// starting a btest server nobody configured.
func TestDashboardNeedsApp(t *testing.T) {
	var cfg caddy.Config
	err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:0"],
		"routes":[{"handle":[{"handler":"btest_dashboard"}]}]}}}}}`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), "btest_dashboard needs the btest app") {
		t.Fatalf("validate: %v", err)
	}
}

// dashboardState reads api/state.
// stateClient opens a connection per request: a config reload closes the
// old server's idle connections, and a GET sent on one as it closed came
// back as EOF (a 10x run), which says nothing about the dashboard.
var stateClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func dashboardState(t *testing.T, url string) dashboard.Snapshot {
	t.Helper()
	resp, err := stateClient.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET api/state: %s", resp.Status)
	}
	var snap dashboard.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestDashboardReload: a config reload keeps the dashboard's history, and
// the facts follow the new config.
func TestDashboardReload(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	site := func(maxSessions string) string {
		return strings.Replace(pt.caddyfile("auth none", "max_sessions "+maxSessions), `respond "site up"`, "btest_dashboard /btest/*\n\trespond \"site up\"", 1)
	}
	p := startCaddy(t, site("7"), "caddyfile", pt.admin, nil, pt.btest, pt.http)
	url := "http://" + pt.http + "/btest/"
	if body, err := getSite("http://"+pt.http+"/", 5*time.Second); err != nil || body != "site up" {
		t.Fatalf("site: %v %q", err, body)
	}
	runClient(t, core.ClientConfig{Address: pt.btest, Duration: time.Second, RemoteTxSpeed: 10e6})
	var before dashboard.Snapshot
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if before = dashboardState(t, url); before.Totals.Sessions == 1 {
			break
		}
	}
	if before.Totals.Sessions != 1 || before.Server.Limits.MaxSessions != 7 {
		t.Fatalf("before the reload: %d sessions, max_sessions %d", before.Totals.Sessions, before.Server.Limits.MaxSessions)
	}
	p.load(site("9"), "text/caddyfile")
	after := dashboardState(t, url)
	if after.Server.Limits.MaxSessions != 9 {
		t.Errorf("after the reload the facts say max_sessions %d, want 9", after.Server.Limits.MaxSessions)
	}
	if after.Totals.Sessions != 1 || len(after.Recent) != len(before.Recent) || after.Recent[0].Seq != before.Recent[0].Seq ||
		len(after.Throughput.T) < len(before.Throughput.T) {
		t.Fatalf("the reload lost the history: before %+v\nafter %+v", before.Totals, after.Totals)
	}
	// The new config's server reports into the same state.
	runClient(t, core.ClientConfig{Address: pt.btest, Duration: time.Second, RemoteTxSpeed: 10e6})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if after = dashboardState(t, url); after.Totals.Sessions == 2 {
			return
		}
	}
	t.Fatalf("a test after the reload is not counted: %+v", after.Totals)
}

// TestDashboardDocs adapts every Caddyfile example of the README's
// "Live dashboard" section and checks what the ordering promise says:
// basic_auth, then the dashboard, then the rest of the site.
func TestDashboardDocs(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## Live dashboard\n")
	if !ok {
		t.Fatal(`README.md has no "## Live dashboard" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	if !strings.Contains(sec, "](docs/dashboard.png)") {
		t.Error("the section does not show docs/dashboard.png")
	}
	var n int
	for i, block := range strings.Split(sec, "```")[1:] {
		lang, body, _ := strings.Cut(block, "\n")
		if i%2 == 1 || lang != "caddy" {
			continue
		}
		n++
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), nil)
		if err != nil {
			t.Fatalf("README dashboard example %d: %v\n%s", n, err, body)
		}
		js := string(out)
		a, d, r := strings.Index(js, `"handler":"authentication"`), strings.Index(js, `"handler":"btest_dashboard"`), strings.Index(js, `"handler":"reverse_proxy"`)
		if a < 0 || d < a || r < d {
			t.Errorf("README dashboard example %d: handlers out of order (auth %d, dashboard %d, proxy %d):\n%s", n, a, d, r, js)
		}
	}
	if n == 0 {
		t.Fatal("no Caddyfile example in the README's dashboard section")
	}
}

// eventStream is an open api/events stream: its events in order, and
// closed when the stream ends.
type eventStream struct {
	events chan sseEvent
}

type sseEvent struct{ name, data string }

func openEvents(t *testing.T, url string) *eventStream {
	t.Helper()
	resp, err := http.Get(url + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET api/events: %s", resp.Status)
	}
	s := &eventStream{events: make(chan sseEvent, 1024)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case line == "" && ev.name != "":
				s.events <- ev
				ev = sseEvent{}
			}
		}
	}()
	return s
}

// next returns the stream's next event named name, or ok false when the
// stream ended; it fails the test when none comes within d.
func (s *eventStream) next(t *testing.T, name string, d time.Duration) (ev sseEvent, ok bool) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok || ev.name == name {
				return ev, ok
			}
		case <-timeout:
			t.Fatalf("no %q event and no end of the stream within %v", name, d)
		}
	}
}

// dashboardSite is a config with the dashboard under /btest/ and no
// grace_period: Caddy's HTTP server waits for its requests without a
// bound when it stops.
func dashboardSite(pt ports, opts ...string) string {
	return strings.Replace(pt.caddyfile(opts...), `respond "site up"`, "btest_dashboard /btest/*\n\trespond \"site up\"", 1)
}

// terminate sends Caddy SIGTERM and fails unless it exits within 5 s:
// `caddy stop` would wait with it, its admin request ends only with
// the process.
func (p *caddyProc) terminate(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		t.Logf("caddy exited %v after SIGTERM", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatalf("caddy still running %v after SIGTERM with an event stream open", time.Since(start))
	}
}

// TestDashboardStreamStop: an open event stream does not hold up Caddy's
// exit (it once kept Caddy running until the browser left).
func TestDashboardStreamStop(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	p := startCaddy(t, dashboardSite(pt, "auth none"), "caddyfile", pt.admin, nil, pt.btest, pt.http)
	s := openEvents(t, "http://"+pt.http+"/btest/")
	if _, ok := s.next(t, "facts", 5*time.Second); !ok {
		t.Fatal("the stream ended before its first facts")
	}
	p.terminate(t)
	if _, ok := s.next(t, "end of stream", 5*time.Second); ok {
		t.Error("the stream goes on after Caddy exited")
	}
}

// TestDashboardStreamReload: after a reload an open event stream ends (the
// browser reconnects to the new config's handler), instead of sending the
// old config's facts.
func TestDashboardStreamReload(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	p := startCaddy(t, dashboardSite(pt, "auth none", "max_sessions 7"), "caddyfile", pt.admin, nil, pt.btest, pt.http)
	url := "http://" + pt.http + "/btest/"
	s := openEvents(t, url)
	if ev, ok := s.next(t, "facts", 5*time.Second); !ok || !strings.Contains(ev.data, `"max_sessions":7,`) {
		t.Fatalf("first facts: %v %q", ok, ev.data)
	}
	p.load(dashboardSite(pt, "auth none", "max_sessions 9"), "text/caddyfile")
	// Either the stream ends or its facts follow the new config; ticks
	// come every second, so 5 s is plenty for either.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, ok := s.next(t, "facts", time.Until(deadline))
		if !ok {
			break
		}
		if strings.Contains(ev.data, `"max_sessions":9,`) {
			break
		}
		t.Logf("facts after the reload: %s", ev.data)
	}
	// A new stream gets the new config's facts.
	s2 := openEvents(t, url)
	if ev, ok := s2.next(t, "facts", 5*time.Second); !ok || !strings.Contains(ev.data, `"max_sessions":9,`) {
		t.Fatalf("a new stream's facts: %v %q", ok, ev.data)
	}
	// And the old config's HTTP server is gone with its streams: Caddy
	// still exits promptly.
	p.terminate(t)
}
