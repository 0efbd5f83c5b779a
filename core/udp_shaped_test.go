package core

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/internal/netlab"
)

// The shaped-link test runs unlimited UDP tests over a real bottleneck: a
// veth pair between two network namespaces of its own, shaped by tc tbf
// (and netem for random loss where the kernel has it). Our server runs in
// one namespace and our client in the other, each a child process of this
// test binary (TestUDPShapedPeer), which reports what its side counted and
// the most its sender sent in any 100 ms window.
//
// `make test` runs a few short cases; BTEST_SHAPED_FULL=1 runs the whole
// matrix: 10, 100 and 1000 Mbit/s, every direction, 1 and 3 streams, 10 s.

// shapedPort is the control port of the server in its namespace; its UDP
// ports are 17001-17100. Nothing else lives in that namespace.
const shapedPort = 17000

// shapedSide is what one side of a shaped test reports.
type shapedSide struct {
	Server              bool
	SentPkts, SentBytes uint64
	RcvdPkts, RcvdBytes uint64
	Lost, StartupLost   uint64
	Duration            time.Duration
	// PeakBps is the most the sender sent in any 100 ms window (bit/s,
	// IP size); SteadyBps what arrived after the first second.
	PeakBps, SteadyBps float64
}

// shapedWatch samples one engine's counters while it runs.
type shapedWatch struct {
	mu      sync.Mutex
	peak    float64
	rx1s    uint64 // bytes received by 1 s
	t1s     time.Time
	started time.Time
	stop    chan struct{}
	done    chan struct{}
}

func watchEngine(e *udpEngine) *shapedWatch {
	w := &shapedWatch{started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		type pt struct {
			t time.Time
			b uint64
		}
		var ring []pt
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case now := <-tk.C:
				b := e.txBytes()
				ring = append(ring, pt{now, b})
				// The newest sample at least 100 ms old opens the window.
				i := -1
				for k := len(ring) - 1; k >= 0; k-- {
					if now.Sub(ring[k].t) >= 100*time.Millisecond {
						i = k
						break
					}
				}
				// Rated over 100-120 ms; a longer span (this
				// goroutine woken late) cannot tell a 100 ms peak.
				if span := now.Sub(ring[max(i, 0)].t); i >= 0 && span <= 120*time.Millisecond {
					r := float64(b-ring[i].b) * 8 / span.Seconds()
					w.mu.Lock()
					w.peak = max(w.peak, r)
					w.mu.Unlock()
				}
				if i >= 0 {
					ring = ring[i:]
				}
				if w.t1s.IsZero() && now.Sub(w.started) >= time.Second {
					w.mu.Lock()
					w.t1s, w.rx1s = now, e.rxBytes()
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// TestUDPShapedPeer is not a test: it is one side of TestUDPShaped, run as
// a child process inside a namespace when BTEST_SHAPED_ROLE is set.
func TestUDPShapedPeer(t *testing.T) {
	role := os.Getenv("BTEST_SHAPED_ROLE")
	if role == "" {
		t.Skip("a helper process of TestUDPShaped")
	}
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	watches := map[bool]*shapedWatch{}
	udpHooks.Store(&udpTestHooks{
		started: func(e *udpEngine) {
			mu.Lock()
			watches[e.server] = watchEngine(e)
			mu.Unlock()
		},
		done: func(r udpReport) {
			mu.Lock()
			w := watches[r.Server]
			mu.Unlock()
			close(w.stop)
			<-w.done
			// The data phase, without the drain that follows it.
			end := w.started.Add(r.Summary.Duration)
			s := shapedSide{
				Server: r.Server, SentPkts: r.SentPkts, SentBytes: r.SentBytes,
				RcvdPkts: r.RcvdPkts, RcvdBytes: r.RcvdBytes, Lost: r.Lost,
				StartupLost: r.Summary.StartupLostPackets, Duration: r.Summary.Duration, PeakBps: w.peak,
			}
			if !w.t1s.IsZero() {
				s.SteadyBps = float64(r.RcvdBytes-w.rx1s) * 8 / end.Sub(w.t1s).Seconds()
			}
			mu.Lock()
			out.Encode(s)
			mu.Unlock()
		},
	})
	defer udpHooks.Store(nil)
	if os.Getenv("BTEST_SHAPED_TRACE") != "" {
		fcTrace = func(f string, a ...any) { fmt.Fprintf(os.Stderr, role+" "+time.Now().Format("05.000")+" "+f+"\n", a...) }
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr := os.Getenv("BTEST_SHAPED_ADDR")
	switch role {
	case "server":
		s, err := NewServer(ServerConfig{Logger: log, UDPPortFirst: shapedPort + 1, UDPPortLast: shapedPort + 100})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(context.Background(), ln)
		fmt.Println(`{"Ready":true}`)
		io.Copy(io.Discard, os.Stdin) // until the parent is done
		s.Close()
	case "client":
		dir, _ := strconv.Atoi(os.Getenv("BTEST_SHAPED_DIR"))
		streams, _ := strconv.Atoi(os.Getenv("BTEST_SHAPED_STREAMS"))
		d, _ := time.ParseDuration(os.Getenv("BTEST_SHAPED_DURATION"))
		_, err := RunClient(context.Background(), ClientConfig{
			Address: addr, UDP: true, Direction: Direction(dir), Connections: streams, Duration: d, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// shapedCase is one test over the shaped link.
type shapedCase struct {
	rate    uint64 // bit/s
	dir     Direction
	streams int
	d       time.Duration
	loss    float64 // netem random loss, percent
}

func (c shapedCase) String() string {
	s := fmt.Sprintf("%s/%dM/%s/%d", c.d, c.rate/1e6, c.dir, c.streams)
	if c.loss > 0 {
		s += fmt.Sprintf("/loss%g%%", c.loss)
	}
	return s
}

func shapedCases() []shapedCase {
	if os.Getenv("BTEST_SHAPED_FULL") == "" {
		return []shapedCase{
			{100e6, Receive, 1, 4 * time.Second, 0},
			{100e6, Transmit, 3, 4 * time.Second, 0},
			{100e6, Both, 1, 4 * time.Second, 0},
			{10e6, Receive, 1, 4 * time.Second, 0},
			{100e6, Transmit, 1, 6 * time.Second, 1},
		}
	}
	var cs []shapedCase
	for _, rate := range []uint64{100e6, 1000e6, 10e6} {
		for _, dir := range []Direction{Receive, Transmit, Both} {
			for _, n := range []int{1, 3} {
				cs = append(cs, shapedCase{rate, dir, n, 10 * time.Second, 0})
			}
		}
	}
	for _, dir := range []Direction{Receive, Transmit, Both} {
		cs = append(cs, shapedCase{100e6, dir, 1, 10 * time.Second, 1})
	}
	return cs
}

// TestUDPShaped: at a tbf bottleneck, an unlimited UDP test loses under 1%
// of its datagrams, delivers within 5% of the bottleneck's rate (after the
// first second in short runs, over the whole test in 10 s runs), and its
// sender never sends more than twice the bottleneck's rate in any 100 ms.
// With netem's 1% random loss, the loss reported after the start-up is
// 1% +/- 0.3%.
func TestUDPShaped(t *testing.T) {
	netlab.Check(t)
	lab := netlab.New(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(lab.AddrA.String(), strconv.Itoa(shapedPort))
	srv := lab.Command(lab.A, self, "-test.run=^TestUDPShapedPeer$")
	srv.Env = append(os.Environ(), "BTEST_SHAPED_ROLE=server", "BTEST_SHAPED_ADDR="+addr)
	srvIn, _ := srv.StdinPipe()
	srvOut, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan shapedSide, 16)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(srvOut)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"Ready"`) {
				close(ready)
				continue
			}
			var s shapedSide
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				lines <- s
			}
		}
	}()
	t.Cleanup(func() {
		srvIn.Close()
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Process.Kill()
			<-done
		}
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the server in the namespace did not start")
	}

	for _, c := range shapedCases() {
		t.Run(c.String(), func(t *testing.T) {
			if err := lab.Shape(c.rate, 0, c.loss); err != nil {
				if c.loss > 0 && !netlab.Required() {
					t.Skipf("no netem here (%v): the random-loss case needs it", err)
				}
				t.Fatal(err)
			}
			cli := lab.Command(lab.B, self, "-test.run=^TestUDPShapedPeer$")
			cli.Env = append(os.Environ(), "BTEST_SHAPED_ROLE=client", "BTEST_SHAPED_ADDR="+addr,
				"BTEST_SHAPED_DIR="+strconv.Itoa(int(c.dir)), "BTEST_SHAPED_STREAMS="+strconv.Itoa(c.streams),
				"BTEST_SHAPED_DURATION="+c.d.String())
			cli.Stderr = os.Stderr
			out, err := cli.Output()
			if err != nil {
				t.Fatalf("client: %v\n%s", err, out)
			}
			var cs shapedSide
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &cs) == nil {
					break
				}
			}
			var ss shapedSide
			select {
			case ss = <-lines:
			case <-time.After(10 * time.Second):
				t.Fatal("no report from the server")
			}
			if c.dir != Transmit {
				checkShaped(t, c, "server->client", ss, cs)
			}
			if c.dir != Receive {
				checkShaped(t, c, "client->server", cs, ss)
			}
		})
	}
}

func checkShaped(t *testing.T, c shapedCase, what string, tx, rx shapedSide) {
	t.Helper()
	b := float64(c.rate)
	total := rx.RcvdPkts + rx.Lost
	if total == 0 || rx.Duration <= 0 {
		t.Fatalf("%s: nothing arrived: %+v", what, rx)
	}
	loss := float64(rx.Lost) / float64(total)
	pathLoss := float64(rx.Lost-min(rx.StartupLost, rx.Lost)) / float64(total)
	goodput := float64(rx.RcvdBytes) * 8 / rx.Duration.Seconds()
	t.Logf("%s: sent %d, arrived %d, lost %d (%.3f%%; start-up %d, path %.3f%%), goodput %.4g bit/s (%.1f%%), after 1 s %.1f%%, peak 100 ms %.1f%% of the bottleneck",
		what, tx.SentPkts, rx.RcvdPkts, rx.Lost, loss*100, rx.StartupLost, pathLoss*100, goodput, goodput/b*100, rx.SteadyBps/b*100, tx.PeakBps/b*100)
	if tx.PeakBps > 2*b {
		t.Errorf("%s: the sender sent %.4g bit/s in a 100 ms window, over twice the bottleneck", what, tx.PeakBps)
	}
	if c.loss > 0 {
		if want := c.loss / 100; pathLoss < want-0.003 || pathLoss > want+0.003 {
			t.Errorf("%s: loss after the start-up %.3f%%, want %.1f%% +/- 0.3%%", what, pathLoss*100, c.loss)
		}
		return
	}
	if loss >= 0.01 {
		t.Errorf("%s: %.3f%% of the datagrams lost, want < 1%%", what, loss*100)
	}
	// Short runs are judged after their first second, 10 s runs whole.
	g := rx.SteadyBps
	if c.d >= 10*time.Second {
		g = goodput
	}
	if g < 0.95*b || g > 1.01*b {
		t.Errorf("%s: goodput %.4g bit/s, want within 5%% of %.4g", what, g, b)
	}
}
