package dashboard

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/internal/testserver"
	"github.com/btest-go/btest/internal/testutil"
)

// testPorts hands out the package's UDP ports (its TCP listeners use
// port 0).
var testPorts = testutil.NewPorts(testutil.RangeDashboard)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// TestRealServer feeds the state from a real server that runs a TCP and a
// UDP test and refuses a wrong password, and checks that no output (state,
// events, page) carries the password or the verifier.
func TestRealServer(t *testing.T) {
	t.Parallel()
	const user, password = "carol", "pw-dash-5b1e-secret"
	v, err := ecsrp5.NewVerifier(user, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := New()
	defer st.Close()
	srv, addr := testserver.Start(t, testPorts, core.ServerConfig{
		Auth: core.AuthECSRP5, Users: []core.User{{Name: user, Password: password, Verifier: &v}},
		Observer: st.Observer(),
	})
	h := NewHandler(st, func() Facts { return FactsOf(srv.Facts()) })
	web := testPorts.HTTPServer(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := openEvents(t, ctx, web, h)
	var stream strings.Builder
	events := make(chan string, 256)
	go func() {
		defer close(events)
		for {
			name, data, err := ev.next()
			if err != nil {
				return
			}
			stream.WriteString(data)
			events <- name + " " + data
		}
	}()

	// 6 s: a loaded machine delays each test's start and its first
	// reports by up to a second or two, and the ticks that count are
	// those while both have reported.
	base := core.ClientConfig{Address: addr, User: user, Password: password, Duration: 6 * time.Second}
	var wg sync.WaitGroup
	for _, c := range []core.ClientConfig{
		{Direction: core.Both, Connections: 2, RemoteTxSpeed: 50e6, LocalTxSpeed: 50e6},
		{UDP: true, Direction: core.Both, RemoteTxSpeed: 20e6, LocalTxSpeed: 20e6},
	} {
		c.Address, c.User, c.Password, c.Duration = base.Address, base.User, base.Password, base.Duration
		wg.Go(func() {
			if _, err := core.RunClient(ctx, c); err != nil {
				t.Errorf("udp=%v test: %v", c.UDP, err)
			}
		})
	}
	bad := base
	bad.Password = "wrong"
	if _, err := core.RunClient(ctx, bad); !errors.Is(err, core.ErrAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
	// While both run, a tick shows both with rates.
	sawBoth := false
	var ticks []string
	for !sawBoth {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if strings.HasPrefix(e, "tick ") {
				ticks = append(ticks, e)
			}
			sawBoth = strings.HasPrefix(e, "tick ") && strings.Count(e, `"proto":"tcp"`) == 1 && strings.Count(e, `"proto":"udp"`) == 1 &&
				!strings.Contains(e, `"tx_bps":0,`)
		case <-ctx.Done():
			t.Fatalf("no tick showed both tests with rates; the ticks:\n%s", strings.Join(ticks, "\n"))
		}
	}
	wg.Wait()
	var snap Snapshot
	deadline := time.Now().Add(5 * time.Second)
	for {
		snap = st.Snapshot()
		if len(snap.Active) == 0 && snap.Totals.Sessions == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(snap.Active) != 0 || snap.Totals.Sessions != 2 || snap.Refusals[core.RefusedAuthFailed] != 1 {
		t.Fatalf("after the tests: %d active, %d ended, refusals %v", len(snap.Active), snap.Totals.Sessions, snap.Refusals)
	}
	for _, r := range snap.Recent {
		if r.Result == "refused" {
			continue
		}
		if r.Result != "ok" || r.User != user || r.DurationS < 2 || r.TxBps <= 0 || r.RxBps <= 0 {
			t.Errorf("recent %+v", r)
		}
		switch {
		case r.Proto == "udp" && (r.TxPackets == 0 || r.RxPackets == 0 || r.LostPackets == nil || r.LossPct == nil):
			t.Errorf("udp both-ways test: packets sent %d received %d, loss %v %v", r.TxPackets, r.RxPackets, r.LostPackets, r.LossPct)
		case r.Proto == "udp" && *r.LossPct != lossPct(*r.LostPackets, r.RxPackets):
			t.Errorf("udp test: packets received %d lost %d, loss %v%%", r.RxPackets, *r.LostPackets, *r.LossPct)
		case r.Proto == "tcp" && (r.LostPackets != nil || r.LossPct != nil):
			t.Errorf("tcp test with a loss figure: %v %v", *r.LostPackets, *r.LossPct)
		}
	}

	resp, err := web.Client().Get(web.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page, _ := get(t, web, "/", http.StatusOK)
	js, _ := get(t, web, "/assets/app.js", http.StatusOK)
	cancel()
	for range events {
	}
	out := string(state) + stream.String() + page + js
	for _, secret := range []string{password, v.String(), strings.Split(v.String(), ":")[1]} {
		if strings.Contains(out, secret) {
			t.Errorf("the dashboard's output contains a secret %q", secret)
		}
	}
	if !strings.Contains(string(state), `"user": "carol"`) {
		t.Errorf("the state does not name the user: %s", state)
	}
}
