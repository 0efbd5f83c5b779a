package caddymodule

// The dashboard in a real browser: Debian's chromium, driven through the
// DevTools protocol by chromedp, loads the page from the Caddy binary that
// runs examples/Caddyfile, while loopback clients run tests.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/btest-go/btest/core"
)

// chromium returns the browser's path. Without it the test is skipped,
// unless CI or BTEST_E2E asks for every end-to-end test
// (scripts/install-chromium.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("BTEST_E2E") != "" {
		t.Fatal("chromium is not installed (run scripts/install-chromium.sh); CI/BTEST_E2E require the browser test")
	}
	t.Skip("chromium is not installed (scripts/install-chromium.sh installs it); skipping the browser test")
	return ""
}

// cardView is what the page shows of a running test.
type cardView struct {
	ID      string  `json:"id"`
	Proto   string  `json:"proto"`
	Tx      float64 `json:"tx"`
	Rx      float64 `json:"rx"`
	Elapsed string  `json:"elapsed"`
	Loss    string  `json:"loss"`
}

// rowView is a line of the recent list.
type rowView struct {
	ID     string `json:"id"`
	Mode   string `json:"mode"`
	Result string `json:"result"`
	Loss   string `json:"loss"`
}

const readCards = `[...document.querySelectorAll('#active .card')].map(c => ({
	id: c.dataset.id,
	proto: c.querySelector('.chip').textContent,
	tx: +c.querySelector('.rate.tx').dataset.bps,
	rx: +c.querySelector('.rate.rx').dataset.bps,
	elapsed: c.querySelector('.elapsed').textContent,
	loss: c.querySelector('.loss')?.textContent || '',
}))`

const readRows = `[...document.querySelectorAll('#recent tbody tr')].map(r => ({
	id: r.dataset.id || '',
	mode: r.cells[3].textContent,
	result: r.querySelector('.result').textContent,
	loss: r.cells[7].textContent,
}))`

// TestDashboardBrowser runs examples/Caddyfile, loads the dashboard through
// basic_auth in chromium while a 6 s TCP and a UDP test run, reads the
// rates from the DOM second by second, finds both tests in the recent list
// afterwards, and takes the screenshot the README shows (saved into
// docs/ with BTEST_UPDATE_SCREENSHOT=1, `make screenshot`).
func TestDashboardBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	src, err := os.ReadFile("../examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	site, err := filepath.Abs("../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	pt := newPorts(t)
	cf := string(src)
	cf = replaceOnce(t, cf, "admin localhost:2019", "admin "+pt.admin)
	cf = replaceOnce(t, cf, "listen :2000", "listen "+pt.btest)
	cf = replaceOnce(t, cf, "udp_ports 2001-2999", "udp_ports "+pt.udp)
	cf = replaceOnce(t, cf, ":8080 {", "http://"+pt.http+" {")
	cf = replaceOnce(t, cf, "root * examples/site", "root * "+site)
	const user, password = "alice", "pw-d4sh-b0ard-btest"
	const webUser, webPassword = "ops", "wall-screen-9c1f"
	hash, err := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	startCaddy(t, cf, "caddyfile", pt.admin, []string{
		"BTEST_USER=" + user, "BTEST_PASSWORD=" + password,
		"BTEST_DASHBOARD_USER=" + webUser, "BTEST_DASHBOARD_HASH=" + string(hash),
	}, pt.btest, pt.http)
	base := "http://" + pt.http + "/btest/"

	// basic_auth guards the page and the APIs.
	for _, c := range []struct{ user, pass string }{{"", ""}, {webUser, "wrong"}, {"btest", "btest"}, {user, password}} {
		for _, p := range []string{"", "api/state", "api/events"} {
			req, _ := http.NewRequest(http.MethodGet, base+p, nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s as %q/%q: %s, want 401", p, c.user, c.pass, resp.Status)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1200), // the whole page, for the screenshot
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Every console message of the page, uncaught exception and browser
	// log entry (a failed request is one) at warning level or above.
	var mu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				mu.Lock()
				consoleErrors = append(consoleErrors, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(webUser+":"+webPassword))
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base), chromedp.WaitVisible(`#conn[data-state="live"]`)); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	facts, err := chromedp.Run(bctx, chromedp.Text(`#facts`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(facts, pt.btest) || !strings.Contains(facts, "ecsrp5") {
		t.Errorf("server facts %q do not show the listener %s and ecsrp5", facts, pt.btest)
	}

	// History for the screenshot: a short test and a wrong password.
	cl := core.ClientConfig{Address: pt.btest, User: user, Password: password}
	warm := cl
	warm.Duration, warm.RemoteTxSpeed = 2*time.Second, 50e6
	runClient(t, warm)
	// A UDP test in which the server only sends: it has no loss figure
	// (the client counts that loss), rather than a 0 %.
	down := cl
	down.UDP, down.Duration, down.RemoteTxSpeed = true, 1500*time.Millisecond, 10e6
	runClient(t, down)
	wrong := cl
	wrong.Password = "not-it"
	if _, err := core.RunClient(ctx, wrong); !errors.Is(err, core.ErrAuthFailed) {
		t.Errorf("wrong btest password: %v", err)
	}

	// The two tests the page must show live.
	tcp, udp := cl, cl
	tcp.Direction, tcp.Connections, tcp.Duration, tcp.RemoteTxSpeed, tcp.LocalTxSpeed = core.Both, 2, 6*time.Second, 120e6, 80e6
	udp.UDP, udp.Direction, udp.Duration, udp.RemoteTxSpeed, udp.LocalTxSpeed = true, core.Both, 6*time.Second, 40e6, 25e6
	var wg sync.WaitGroup
	for _, c := range []core.ClientConfig{tcp, udp} {
		wg.Go(func() {
			if _, err := core.RunClient(ctx, c); err != nil {
				t.Errorf("udp=%v client: %v", c.UDP, err)
			}
		})
	}
	testsDone := make(chan struct{})
	go func() { wg.Wait(); close(testsDone) }()
	seen := map[string][]cardView{} // proto -> samples
	ids := map[string]string{}      // proto -> card id
	var shot []byte
	// Sample until both tests ended: on a loaded machine (a make run
	// with a test beside the suite) reading the page once took over a
	// second, and a fixed 8 s saw the UDP card only four times.
	for deadline, running := time.Now().Add(30*time.Second), true; running && time.Now().Before(deadline); {
		select {
		case <-testsDone:
			running = false
		default:
		}
		cards, err := chromedp.Run(bctx, chromedp.Evaluate[[]cardView](readCards))
		if err != nil {
			t.Fatal(err)
		}
		protos := map[string]bool{}
		for _, c := range cards {
			protos[c.Proto] = true
		}
		if protos["tcp"] && protos["udp"] {
			for _, c := range cards {
				if c.Tx > 0 || c.Rx > 0 {
					// Reported on: the loss on the way to the server is known.
					if c.Proto == "udp" && !strings.HasPrefix(c.Loss, "loss to server (one way) ") {
						t.Errorf("udp both-ways card: %q, want the loss on the way to the server, one way", c.Loss)
					}
					seen[c.Proto] = append(seen[c.Proto], c)
					ids[c.Proto] = c.ID
				}
			}
			// The screenshot once both graphs have a few seconds, the
			// latest one taken while both tests were still on the page
			// after it (a 6 s test may end any moment from 0:05 on).
			if !slices.ContainsFunc(cards, func(c cardView) bool { return c.Elapsed < "0:03" || c.Elapsed > "0:05" }) {
				img, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				after, err := chromedp.Run(bctx, chromedp.Evaluate[[]cardView](readCards))
				if err != nil {
					t.Fatal(err)
				}
				if len(after) == 2 {
					shot = img
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	for _, proto := range []string{"tcp", "udp"} {
		s := seen[proto]
		var rates []string
		for _, c := range s {
			r := fmt.Sprintf("%.0f/%.0f", c.Tx, c.Rx)
			if len(rates) == 0 || rates[len(rates)-1] != r {
				rates = append(rates, r)
			}
		}
		// Sampled up to four times a second for ~6 s: the rates must
		// change with (nearly) every report, not stand still.
		if len(rates) < 3 {
			t.Errorf("%s card: rates over %d samples %v; want them to change second by second", proto, len(s), rates)
		}
		t.Logf("%s card %s: %d samples, rates (tx/rx bit/s) %v", proto, ids[proto], len(s), rates)
	}

	// Both end up in the recent list with their results.
	var rows []rowView
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rows, err = chromedp.Run(bctx, chromedp.Evaluate[[]rowView](readRows)); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, r := range rows {
			if r.ID != "" && (r.ID == ids["tcp"] || r.ID == ids["udp"]) {
				found++
			}
		}
		cards, err := chromedp.Run(bctx, chromedp.Evaluate[[]cardView](readCards))
		if err != nil {
			t.Fatal(err)
		}
		if found == 2 && len(cards) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recent list %+v, active %+v: want the tcp and udp tests (%v) listed and none active", rows, cards, ids)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := map[string]string{ids["tcp"]: "tcp both ×2", ids["udp"]: "udp both"}
	refused := false
	for _, r := range rows {
		if m, ok := want[r.ID]; ok {
			if r.Mode != m || r.Result != "ok" {
				t.Errorf("recent row %+v, want mode %q and result ok", r, m)
			}
		}
		refused = refused || strings.HasPrefix(r.Result, "refused: auth failed")
	}
	if !refused {
		t.Errorf("the wrong password is not in the recent list: %+v", rows)
	}
	if !slices.ContainsFunc(rows, func(r rowView) bool { return r.Mode == "tcp receive" && r.Result == "ok" && r.Loss == "–" }) {
		t.Errorf("the warm-up test is not in the recent list (without a loss): %+v", rows)
	}
	if !slices.ContainsFunc(rows, func(r rowView) bool { return r.Mode == "udp receive" && r.Result == "ok" && r.Loss == "–" }) {
		t.Errorf("the UDP receive test is not in the recent list without a loss figure: %+v", rows)
	}
	if !slices.ContainsFunc(rows, func(r rowView) bool { return r.Mode == "udp both" && strings.HasSuffix(r.Loss, " %") }) {
		t.Errorf("the UDP both-ways test has no loss figure in the recent list: %+v", rows)
	}

	mu.Lock()
	errs := slices.Clone(consoleErrors)
	mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("the browser reported errors:\n%s", strings.Join(errs, "\n"))
	}
	if shot == nil {
		t.Fatal("no screenshot: the page never showed both tests with rates for long enough")
	}
	// The README's picture changes only when someone asks for it: a test
	// that rewrote a tracked file on every run would leave the tree dirty
	// (and the release test would then rebuild dist/ for a dirty tree).
	dst := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if os.Getenv("BTEST_UPDATE_SCREENSHOT") != "" {
		dst = filepath.Join("..", "docs", "dashboard.png")
	}
	if err := os.WriteFile(dst, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", dst, len(shot))
}
