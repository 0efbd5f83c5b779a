package caddymodule

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
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
