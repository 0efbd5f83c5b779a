package caddymodule

// Integration tests against the real Caddy binary built from
// cmd/xcaddy-build, each on its own free loopback ports. Skipped with -short.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

var caddyBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if caddyBuild.dir != "" {
		os.RemoveAll(caddyBuild.dir)
	}
	os.Exit(code)
}

// caddyBinary builds cmd/xcaddy-build once per test run (a few seconds with
// a warm build cache, minutes without) and returns its path. make test
// builds it beside the test binary and names it in BTEST_CADDY.
func caddyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs Caddy; skipped with -short")
	}
	b := &caddyBuild
	b.once.Do(func() {
		if b.path = os.Getenv("BTEST_CADDY"); b.path != "" {
			if _, err := os.Stat(b.path); err != nil {
				b.err = fmt.Errorf("BTEST_CADDY: %w", err)
			}
			return
		}
		b.dir, b.err = os.MkdirTemp("", "btest-caddy-")
		if b.err != nil {
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("no go command to build caddy with: %w", err)
			return
		}
		b.path = filepath.Join(b.dir, "caddy")
		// Without the symbol table and DWARF (-s -w) the link of this
		// 80 MB program takes a third less CPU; the tests read neither,
		// and a panic's stack trace does not need them.
		cmd := exec.Command(gobin, "build", "-ldflags=-s -w", "-o", b.path, "github.com/btest-go/btest/cmd/xcaddy-build")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/xcaddy-build: %w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// syncBuffer collects a process's output.
type syncBuffer = testutil.Buffer

// caddyProc is a running Caddy.
type caddyProc struct {
	t      *testing.T
	bin    string
	cmd    *exec.Cmd
	admin  string
	out    syncBuffer
	exited chan struct{}
}

// startCaddy runs `caddy run` with config (adapter "" for JSON) and waits
// until the admin API answers and every address in ready accepts.
func startCaddy(t *testing.T, config, adapter, admin string, env []string, ready ...string) *caddyProc {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	name := "caddy.json"
	if adapter != "" {
		name = "Caddyfile"
	}
	cfgPath := filepath.Join(dir, name)
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--config", cfgPath}
	if adapter != "" {
		args = append(args, "--adapter", adapter)
	}
	p := &caddyProc{t: t, bin: bin, admin: admin, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(cleanEnv(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	testutil.DieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("caddy exited at start:\n%s", p.out.String())
		default:
		}
		if p.isReady(ready) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy not ready after 60s:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *caddyProc) isReady(addrs []string) bool {
	resp, err := http.Get("http://" + p.admin + "/config/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// cleanEnv is the environment without variables the configs read.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BTEST_") || strings.HasPrefix(k, "XDG_") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// load replaces the running config through the admin API.
func (p *caddyProc) load(config, contentType string) {
	p.t.Helper()
	resp, err := http.Post("http://"+p.admin+"/load", contentType, strings.NewReader(config))
	if err != nil {
		p.t.Fatalf("POST /load: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("POST /load: %s: %s", resp.Status, body)
	}
}

// metrics returns the admin endpoint's /metrics text.
func (p *caddyProc) metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %s", err, resp.Status)
	}
	return string(b)
}

// metric sums the samples of name whose labels include every `k="v"` in
// labels.
func metric(text, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// waitMetric polls /metrics, up to 10 s, until cond holds for the metric;
// t is the test (or subtest) that fails when it does not.
func (p *caddyProc) waitMetric(t testing.TB, what string, cond func(float64) bool, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := metric(p.metrics(t), name, labels...)
		if cond(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v", what, name, labels, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *caddyProc) stop() {
	p.t.Helper()
	out, err := exec.Command(p.bin, "stop", "--address", p.admin).CombinedOutput()
	if err != nil {
		p.t.Fatalf("caddy stop: %v\n%s", err, out)
	}
}

// testPorts keeps this package's Caddy instances apart from every other
// test's servers, a make run's and the kernel's ephemeral ports.
var testPorts = testutil.NewPorts(testutil.RangeCaddy)

// ports are one test's loopback addresses.
type ports struct {
	admin, btest, http string
	udp                string
}

func newPorts(t *testing.T) ports {
	return newPortsUDP(t, 16)
}

// newPortsUDP is newPorts with n UDP ports (a process of Isolate has 12).
func newPortsUDP(t *testing.T, n int) ports {
	return ports{
		admin: testPorts.TCPAddr(t),
		btest: testPorts.TCPAddr(t),
		http:  testPorts.TCPAddr(t),
		udp:   testPorts.UDPRange(t, n),
	}
}

// caddyfile is a test config: btest with the given options and a site.
func (pt ports) caddyfile(opts ...string) string {
	return fmt.Sprintf(`{
	admin %s
	btest {
		listen %s
		udp_ports %s
		%s
	}
}

http://%s {
	respond "site up"
}
`, pt.admin, pt.btest, pt.udp, strings.Join(opts, "\n\t\t"), pt.http)
}

func getSite(url string, timeout time.Duration) (string, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// replaceOnce replaces old with new in s and fails unless old occurs once:
// a changed example must change the test too.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("example: %q occurs %d times, want 1", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

func runClient(t *testing.T, cfg core.ClientConfig) core.Summary {
	t.Helper()
	sum, err := core.RunClient(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s %s test: %v", map[bool]string{false: "tcp", true: "udp"}[cfg.UDP], cfg.Direction, err)
	}
	return sum
}

// TestCaddyExample runs examples/Caddyfile (on test ports) with credentials
// from the environment: TCP, UDP and authenticated tests, the website,
// /metrics and the session logs.
func TestCaddyExample(t *testing.T) {
	t.Parallel()
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
	const user, password = "alice", "pw-7f3a9c-do-not-log"
	p := startCaddy(t, cf, "caddyfile", pt.admin, []string{"BTEST_USER=" + user, "BTEST_PASSWORD=" + password}, pt.btest, pt.http)

	body, err := getSite("http://"+pt.http+"/", 5*time.Second)
	if err != nil || !strings.Contains(body, "btest-go on Caddy") {
		t.Fatalf("site: %v %q", err, body)
	}
	base := core.ClientConfig{Address: pt.btest, User: user, Password: password, Duration: 1500 * time.Millisecond}
	t.Run("tcp receive", func(t *testing.T) {
		c := base
		c.RemoteTxSpeed = 20e6
		if s := runClient(t, c); s.RxBytes == 0 {
			t.Fatal("no bytes received")
		}
	})
	t.Run("tcp both 4 connections", func(t *testing.T) {
		c := base
		c.Direction, c.Connections, c.RemoteTxSpeed, c.LocalTxSpeed = core.Both, 4, 20e6, 20e6
		if s := runClient(t, c); s.RxBytes == 0 || s.TxBytes == 0 {
			t.Fatalf("bytes rx %d tx %d", s.RxBytes, s.TxBytes)
		}
	})
	t.Run("udp receive", func(t *testing.T) {
		c := base
		c.UDP, c.RemoteTxSpeed = true, 10e6
		if s := runClient(t, c); s.RxBytes == 0 {
			t.Fatal("no bytes received")
		}
	})
	t.Run("udp transmit", func(t *testing.T) {
		c := base
		c.UDP, c.Direction, c.LocalTxSpeed = true, core.Transmit, 10e6
		// A UDP sender's tx is what the server reported receiving: run
		// until a report counted some (a loaded machine may delay the
		// data past the first report), 15 s at most.
		ctx, stop := context.WithTimeout(context.Background(), 15*time.Second)
		defer stop()
		c.Duration = 0
		c.OnInterval = func(s core.IntervalStats) {
			if s.Elapsed >= 1500*time.Millisecond && s.TxBytes > 0 {
				stop()
			}
		}
		s, err := core.RunClient(ctx, c)
		if err != nil {
			t.Fatalf("udp transmit test: %v", err)
		}
		if s.TxBytes == 0 {
			t.Fatal("the server reported no bytes received")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := base
		c.Password = "wrong"
		if _, err := core.RunClient(context.Background(), c); !errors.Is(err, core.ErrAuthFailed) {
			t.Fatalf("wrong password: %v, want ErrAuthFailed", err)
		}
	})

	p.waitMetric(t, "no test running", func(v float64) bool { return v == 0 }, "caddy_btest_sessions_active")
	m := p.metrics(t)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"caddy_btest_sessions_total", []string{`proto="tcp"`, `result="ok"`}, 2},
		{"caddy_btest_sessions_total", []string{`proto="udp"`, `result="ok"`}, 2},
		{"caddy_btest_sessions_total", []string{`direction="both"`, `proto="tcp"`}, 1},
		{"caddy_btest_bytes_total", []string{`proto="tcp"`, `direction="sent"`}, 1e6},
		{"caddy_btest_bytes_total", []string{`proto="tcp"`, `direction="received"`}, 1e6},
		{"caddy_btest_bytes_total", []string{`proto="udp"`, `direction="sent"`}, 1e5},
		{"caddy_btest_bytes_total", []string{`proto="udp"`, `direction="received"`}, 1e5},
		{"caddy_btest_auth_failures_total", nil, 1},
		{"caddy_btest_refusals_total", []string{`reason="auth_failed"`}, 1},
		{"caddy_btest_build_info", []string{`version="`, `revision="`}, 1},
	} {
		if v := metric(m, c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want >= %v", c.name, c.labels, v, c.min)
		}
	}
	p.waitMetric(t, "no UDP port held", func(v float64) bool { return v == 0 }, "caddy_btest_udp_ports_in_use")

	// The last lines may still be in the pipe from Caddy.
	var logs string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if logs = p.out.String(); strings.Count(logs, `"msg":"btest session end"`) >= 4 {
			break
		}
	}
	if strings.Contains(logs, password) {
		t.Error("the password appears in Caddy's output")
	}
	var ends int
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"logger":"btest"`) && strings.Contains(l, `"msg":"btest session end"`) {
			ends++
			for _, f := range []string{`"remote":"127.0.0.1:`, `"user":"alice"`, `"proto":`, `"direction":`, `"connections":`, `"tx_bytes":`, `"rx_bytes":`, `"duration":`, `"result":"ok"`} {
				if !strings.Contains(l, f) {
					t.Errorf("session end log without %s: %s", f, l)
				}
			}
		}
	}
	if ends != 4 || strings.Count(logs, `"msg":"btest session start"`) != 4 {
		t.Errorf("%d session end lines and %d start lines, want 4 each", ends, strings.Count(logs, `"msg":"btest session start"`))
	}
}

// TestCaddyExampleJSON runs examples/caddy.json (on test ports) with the
// default credentials.
func TestCaddyExampleJSON(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../examples/caddy.json")
	if err != nil {
		t.Fatal(err)
	}
	site, err := filepath.Abs("../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	pt := newPorts(t)
	js := string(src)
	js = replaceOnce(t, js, `"listen": "localhost:2019"`, `"listen": "`+pt.admin+`"`)
	js = replaceOnce(t, js, `":2000"`, `"`+pt.btest+`"`)
	js = replaceOnce(t, js, `"udp_ports": "2001-2999"`, `"udp_ports": "`+pt.udp+`"`)
	js = replaceOnce(t, js, `":8080"`, `"`+pt.http+`"`)
	js = replaceOnce(t, js, `"root": "examples/site"`, `"root": "`+site+`"`)
	startCaddy(t, js, "", pt.admin, nil, pt.btest, pt.http)
	runClient(t, core.ClientConfig{Address: pt.btest, User: "btest", Password: "btest", Duration: time.Second, RemoteTxSpeed: 10e6})
	if body, err := getSite("http://"+pt.http+"/", 5*time.Second); err != nil || !strings.Contains(body, "btest-go on Caddy") {
		t.Fatalf("site: %v %q", err, body)
	}
}

// TestCaddyReload loads a new config through the admin API while a TCP
// and a UDP test run: both go on under the old config (its rate cap), the
// reload does not wait for them, and the next tests get the new config
// (new password, new rate cap).
func TestCaddyReload(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	oldCfg := pt.caddyfile("auth md5", "user u p1", "max_tx_rate 40M", "grace_period 30s")
	newCfg := pt.caddyfile("auth md5", "user u p2", "max_tx_rate 8M", "grace_period 30s")
	p := startCaddy(t, oldCfg, "caddyfile", pt.admin, nil, pt.btest)

	const testLen = 7 * time.Second
	var (
		wg               sync.WaitGroup
		tcpSum, udpSum   core.Summary
		tcpErr, udpErr   error
		mu               sync.Mutex
		tcpLate, udpLate []float64 // rates reported after the reload
		reloaded         = make(chan struct{})
	)
	after := func(dst *[]float64) func(core.IntervalStats) {
		return func(st core.IntervalStats) {
			select {
			case <-reloaded:
				mu.Lock()
				*dst = append(*dst, st.RxBps)
				mu.Unlock()
			default:
			}
		}
	}
	wg.Go(func() {
		tcpSum, tcpErr = core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, User: "u", Password: "p1",
			Duration: testLen, OnInterval: after(&tcpLate)})
	})
	wg.Go(func() {
		udpSum, udpErr = core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, User: "u", Password: "p1",
			UDP: true, Duration: testLen, RemoteTxSpeed: 20e6, OnInterval: after(&udpLate)})
	})
	p.waitMetric(t, "two tests running", func(v float64) bool { return v == 2 }, "caddy_btest_sessions_active")
	time.Sleep(500 * time.Millisecond)

	start := time.Now()
	p.load(newCfg, "text/caddyfile")
	close(reloaded)
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("reload took %v: it waited for the running tests", el)
	}

	// The next tests use the new config, while the old ones still run.
	if _, err := core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, User: "u", Password: "p1", Duration: time.Second}); !errors.Is(err, core.ErrAuthFailed) {
		t.Errorf("old password after reload: %v, want ErrAuthFailed", err)
	}
	var newRates []float64
	s := runClient(t, core.ClientConfig{Address: pt.btest, User: "u", Password: "p2", Duration: 1500 * time.Millisecond,
		OnInterval: func(st core.IntervalStats) { newRates = append(newRates, st.RxBps) }})
	if s.RxBps > 8e6*1.15 {
		t.Errorf("test after reload got %.1f Mbit/s, over the new 8M cap", s.RxBps/1e6)
	}
	// A UDP test of the new config while the old config's still holds its
	// port: the shared pool hands out another.
	runClient(t, core.ClientConfig{Address: pt.btest, User: "u", Password: "p2", UDP: true, Duration: time.Second, RemoteTxSpeed: 4e6})

	wg.Wait()
	if tcpErr != nil || udpErr != nil {
		t.Fatalf("tests running across the reload: tcp %v, udp %v", tcpErr, udpErr)
	}
	for _, s := range []core.Summary{tcpSum, udpSum} {
		if s.Duration < testLen-500*time.Millisecond {
			t.Errorf("%s test across the reload ran %v of %v", s.Proto, s.Duration, testLen)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tcpLate) < 2 || len(udpLate) < 2 {
		t.Fatalf("too few reports after the reload: tcp %v udp %v", tcpLate, udpLate)
	}
	t.Logf("Mbit/s after the reload: tcp %.1f, udp %.1f; new test %.1f", mbps(tcpLate), mbps(udpLate), mbps(newRates))
	// Under the old config's 40M cap (UDP: the 20M asked for), well over
	// the new 8M one; the median shrugs off one slow second on a busy
	// machine.
	if m := median(tcpLate); m < 16e6 {
		t.Errorf("tcp test after the reload at a median %.1f Mbit/s: %v", m/1e6, mbps(tcpLate))
	}
	if m := median(udpLate); m < 12e6 {
		t.Errorf("udp test after the reload at a median %.1f Mbit/s: %v", m/1e6, mbps(udpLate))
	}
	if !strings.Contains(p.out.String(), "btest config stopping; running tests may finish") {
		t.Error("no log line about running tests on reload")
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func mbps(rates []float64) []float64 {
	out := make([]float64, len(rates))
	for i, r := range rates {
		out[i] = float64(int(r/1e5)) / 10
	}
	return out
}

// TestCaddyStop: `caddy stop` lets a running test go on for grace_period,
// then ends it, and Caddy exits within grace_period (and a margin).
func TestCaddyStop(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	const grace = 2 * time.Second
	p := startCaddy(t, pt.caddyfile("auth none", "grace_period 2s"), "caddyfile", pt.admin, nil, pt.btest)
	clientDone := make(chan error, 1)
	go func() {
		_, err := core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, Duration: time.Minute, RemoteTxSpeed: 10e6})
		clientDone <- err
	}()
	p.waitMetric(t, "test running", func(v float64) bool { return v == 1 }, "caddy_btest_sessions_active")

	start := time.Now()
	p.stop()
	select {
	case <-p.exited:
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("caddy still running %v after stop with grace_period %v", time.Since(start), grace)
	}
	el := time.Since(start)
	if el < grace-500*time.Millisecond {
		t.Errorf("caddy exited %v after stop: it did not give the running test its grace period", el)
	}
	t.Logf("caddy exited %v after stop (grace_period %v)", el, grace)
	select {
	case err := <-clientDone:
		if err == nil {
			t.Error("client saw no error when the server ended the test")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client still running after Caddy exited")
	}
	if !strings.Contains(p.out.String(), "btest grace period over; ended running tests") {
		t.Error("no log line about ending running tests")
	}
}

// dialRaw connects to the btest port and reads the HELLO.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var hello [4]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		t.Fatalf("no hello: %v", err)
	}
	return c
}

// expectClosed asserts the server closes c within d without sending more.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection within %v", d)
	}
	if len(got) > 0 {
		t.Fatalf("server sent % x before closing", got)
	}
}

// TestCaddyHostile sends what the core's hostile tests send to the
// Caddy-hosted server: it refuses the same way and counts each reason, and
// Caddy's website keeps answering while a client floods the btest port.
func TestCaddyHostile(t *testing.T) {
	t.Parallel()
	pt := newPorts(t)
	p := startCaddy(t, pt.caddyfile("auth md5", "user u p", "max_connections 10", "max_sessions_per_ip 2",
		"deny 127.0.0.9", "handshake_timeout 2s"), "caddyfile", pt.admin, nil, pt.btest, pt.http)
	refused := func(reason string) {
		t.Helper()
		p.waitMetric(t, "refusal counted", func(v float64) bool { return v >= 1 }, "caddy_btest_refusals_total", `reason="`+reason+`"`)
	}

	for _, tc := range []struct {
		name   string
		send   []byte
		reason string
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n"), "bad_command"},
		{"unknown proto", []byte{0x05, 0x01, 0x01, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "bad_command"},
		{"join unknown token", func() []byte { j := wire.Join{Token: 0x4242}.Marshal(); return j[:] }(), "unknown_token"},
		{"too many connections", []byte{0x01, 0x02, 0x01, 200, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "max_connections"},
		{"silent", nil, "handshake_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, pt.btest)
			c.Write(tc.send)
			expectClosed(t, c, 3*time.Second)
			refused(tc.reason)
		})
	}
	t.Run("denied address", func(t *testing.T) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
		c, err := d.Dial("tcp", pt.btest)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosed(t, c, 3*time.Second) // not even a HELLO
		refused("not_allowed")
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, User: "u", Password: "x", Duration: time.Second})
		if !errors.Is(err, core.ErrAuthFailed) {
			t.Fatalf("%v, want ErrAuthFailed", err)
		}
		refused("auth_failed")
	})
	t.Run("sessions per ip", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				core.RunClient(ctx, core.ClientConfig{Address: pt.btest, User: "u", Password: "p", RemoteTxSpeed: 1e6})
			})
		}
		p.waitMetric(t, "two tests running", func(v float64) bool { return v == 2 }, "caddy_btest_sessions_active")
		_, err := core.RunClient(context.Background(), core.ClientConfig{Address: pt.btest, User: "u", Password: "p", Duration: time.Second})
		cancel()
		wg.Wait()
		if !errors.Is(err, core.ErrRefused) {
			t.Fatalf("third test from one address: %v, want ErrRefused", err)
		}
		refused("max_sessions_per_ip")
	})

	t.Run("flood", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		// Hold more connections in their handshake than the server allows.
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range 600 {
			c, err := net.Dial("tcp", pt.btest)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			held = append(held, c)
		}
		// And open, spam and drop connections as fast as possible.
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					c, err := net.DialTimeout("tcp", pt.btest, time.Second)
					if err != nil {
						continue
					}
					c.Write(bytes.Repeat([]byte{0xff}, 64))
					c.Close()
				}
			})
		}
		var gets, slow int
		for ctx.Err() == nil {
			start := time.Now()
			if body, err := getSite("http://"+pt.http+"/", 3*time.Second); err != nil || body != "site up" {
				t.Errorf("site during the flood: %v %q", err, body)
			}
			if time.Since(start) > time.Second {
				slow++
			}
			gets++
			time.Sleep(50 * time.Millisecond)
		}
		wg.Wait()
		t.Logf("%d site requests during the flood, %d slower than 1s", gets, slow)
		if slow > gets/2 {
			t.Errorf("%d of %d site requests took over a second", slow, gets)
		}
		// One source holds at most max_handshakes_per_source of them.
		refused("too_many_handshakes_per_source")
		for _, c := range held {
			c.Close()
		}
		held = nil
		// The btest server is still serving.
		runClient(t, core.ClientConfig{Address: pt.btest, User: "u", Password: "p", Duration: time.Second, RemoteTxSpeed: 10e6})
	})
}

// TestCaddyCommands: `caddy list-modules` shows the app, and `caddy
// validate` checks a config without binding its listeners (the port is
// held by a socket without SO_REUSEPORT, so binding it would fail).
func TestCaddyCommands(t *testing.T) {
	t.Parallel()
	bin := caddyBinary(t)
	out, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	if !strings.Contains("\n"+string(out), "\nbtest\n") {
		t.Fatalf("list-modules does not show btest:\n%s", out)
	}

	ln := testPorts.Listen(t, "127.0.0.1")
	defer ln.Close()
	pt := newPorts(t)
	pt.btest = ln.Addr().String()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(pt.caddyfile("user u {env.BTEST_TEST_PW:pw}")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(cleanEnv(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate with the btest port taken: %v\n%s", err, out)
	}
	// And a bad config fails validation with the reason.
	if err := os.WriteFile(cfg, []byte(pt.caddyfile("auth md5")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "validate", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(cleanEnv(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "auth md5 needs at least one user") {
		t.Fatalf("caddy validate of md5 without users: %v\n%s", err, out)
	}
}
