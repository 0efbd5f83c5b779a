//go:build unix

package telegrafinput

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/internal/testserver"
	"github.com/btest-go/btest/internal/testutil"
)

// The end-to-end test runs real components on loopback: the slim Telegraf
// from scripts/install-telegraf.sh with examples/telegraf.conf, running
// btest-telegraf (built here) with examples/btest-telegraf.conf, against
// our btest server, writing to Debian's InfluxDB 1.x started here with its
// own data directory. It then asks InfluxDB over HTTP what arrived.
//
// Without telegraf or influxd it skips, unless BTEST_E2E is set (CI),
// where a missing component is a failure.

// telegrafVersion is the Telegraf that scripts/install-telegraf.sh builds.
const telegrafVersion = "v1.37.2"

func e2eRequired() bool {
	v := os.Getenv("BTEST_E2E")
	return v != "" && v != "0" && v != "false"
}

// findTelegraf looks where scripts/install-telegraf.sh puts telegraf:
// $BTEST_TELEGRAF, then its cache directory, then PATH.
func findTelegraf() (string, error) {
	if p := os.Getenv("BTEST_TELEGRAF"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("BTEST_TELEGRAF=%s: %w", p, err)
		}
		return p, nil
	}
	cache := os.Getenv("BTEST_CACHE_DIR")
	if cache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "btest-go")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "telegraf-"+telegrafVersion, "bin", "telegraf")
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("telegraf")
}

func TestEndToEndTelegrafInfluxDB(t *testing.T) {
	t.Parallel()
	telegraf, terr := findTelegraf()
	influxd, ierr := exec.LookPath("influxd")
	var missing []string
	if terr != nil {
		missing = append(missing, fmt.Sprintf("telegraf (%v; bash scripts/install-telegraf.sh builds it)", terr))
	}
	if ierr != nil {
		missing = append(missing, fmt.Sprintf("influxd (%v; bash scripts/install-influxdb.sh installs it)", ierr))
	}
	if len(missing) > 0 {
		msg := "end-to-end test needs " + strings.Join(missing, " and ")
		if e2eRequired() {
			t.Fatal(msg + " (BTEST_E2E is set, so this is a failure)")
		}
		t.Skip(msg + ", or set BTEST_E2E=1 to make this a failure")
	}
	if testing.Short() && !e2eRequired() {
		t.Skip("end-to-end test skipped in -short mode (BTEST_E2E=1 runs it)")
	}
	t.Logf("telegraf %s, influxd %s", telegraf, influxd)

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildProgram(t, bin)
	influxURL := startInfluxDB(t, influxd, filepath.Join(dir, "influxdb"))
	server := startE2EServer(t)

	// examples/btest-telegraf.conf, with shorter tests and one more
	// target whose password is wrong, so a failure point must arrive too.
	btestConf := filepath.Join(dir, "btest.conf")
	conf := replaceAll(t, readExample(t, "btest-telegraf.conf"), `duration = "10s"`, `duration = "2s"`, 2)
	conf += `
## Added by the end-to-end test: a failure point for every round.
[[targets]]
  address = "${BTEST_SERVER}"
  user = "${BTEST_USER}"
  password = "wrong"
`
	writeFile(t, btestConf, conf)

	// examples/telegraf.conf with a short interval and our config path.
	telegrafConf := filepath.Join(dir, "telegraf.conf")
	tc := readExample(t, "telegraf.conf")
	tc = replaceAll(t, tc, `interval = "60s"`, `interval = "6s"`, 1)
	tc = replaceAll(t, tc, `flush_interval = "10s"`, `flush_interval = "1s"`, 1)
	tc = replaceAll(t, tc, `"/etc/telegraf/btest.conf"`, strconv.Quote(btestConf), 1)
	writeFile(t, telegrafConf, tc)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, telegraf, "--config", telegrafConf, "--debug")
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"INFLUX_URL="+influxURL,
		"BTEST_SERVER="+server,
		"BTEST_USER=btest",
		"BTEST_PASSWORD=secret",
	)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	var tout, terrs syncBuffer
	cmd.Stdout, cmd.Stderr = &tout, &terrs
	testutil.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("telegraf stderr:\n%s\ntelegraf stdout:\n%s", terrs.String(), tout.String())
		}
	}()

	// Wait until two rounds are in InfluxDB.
	var rows []map[string]any
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		rows, err = queryInflux(influxURL, "SELECT * FROM btest")
		if err == nil && enoughRounds(rows, 2) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("telegraf exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("two rounds did not arrive in InfluxDB within 90s (last query: %v, %d rows)", err, len(rows))
		}
		time.Sleep(time.Second)
	}

	// Stop Telegraf as systemd would; it stops btest-telegraf (closing its
	// stdin) and exits cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("telegraf did not exit cleanly: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("telegraf did not stop within 30s of SIGTERM")
	}
	rows, err := queryInflux(influxURL, "SELECT * FROM btest")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(server)
	checkE2ERows(t, rows, port)

	// The Grafana query from the README: throughput per test kind.
	q := `SELECT mean("rx_bps") / 1000000 AS rx_mbps, mean("tx_bps") / 1000000 AS tx_mbps FROM "btest" ` +
		`WHERE "result" = 'success' AND time > now() - 1h GROUP BY "source", "protocol", "direction"`
	means, err := queryInflux(influxURL, q)
	if err != nil || len(means) != 2 {
		t.Errorf("throughput query: %v, %d series, want 2", err, len(means))
	}
	for _, m := range means {
		t.Logf("InfluxQL %s/%s: %v", m["protocol"], m["direction"], m)
	}

	logs := terrs.String()
	for line := range strings.Lines(logs) {
		// "file already closed": Telegraf's execd, stopping, closes the
		// pipes it still reads from (a race inside Telegraf, not an
		// error of the input's).
		if strings.Contains(line, "read |0: file already closed") {
			continue
		}
		if strings.Contains(line, "E! [inputs.execd]") || strings.Contains(line, "parse error") {
			t.Errorf("telegraf logged an error from the input: %s", line)
		}
	}
	want := []string{"W! [inputs.execd] " + server + " tcp receive: auth_failed", "I! [inputs.execd] btest-telegraf: 3 target(s)",
		"I! [inputs.execd] Process " + filepath.Join(bin, "btest-telegraf") + " shut down"}
	// The input's last line ("stdin closed; stopping", which
	// TestMainStdinRounds checks on the input itself) reaches Telegraf's log
	// unless Telegraf's own race drops it: execd waits for the process
	// and closes the stderr pipe it is still reading from, and says so.
	const stopping = "I! [inputs.execd] btest-telegraf: stdin closed; stopping"
	if strings.Contains(logs, "error reading stderr: read |0: file already closed") && !strings.Contains(logs, stopping) {
		t.Logf("Telegraf closed the input's stderr before reading its last line (its race), so %q is not in its log", stopping)
	} else {
		want = append(want, stopping)
	}
	for _, s := range want {
		if !strings.Contains(logs, s) {
			t.Errorf("telegraf log lacks %q", s)
		}
	}
	// A sample of what Telegraf printed (outputs.file), for the docs.
	seen := map[string]bool{}
	for line := range strings.Lines(tout.String()) {
		if !strings.HasPrefix(line, "btest,") {
			continue
		}
		key := line[:strings.Index(line, " ")]
		key = key[:strings.Index(key, ",source=")]
		if !seen[key] {
			seen[key] = true
			t.Logf("telegraf output: %s", strings.TrimSpace(line))
		}
	}
}

// enoughRounds reports whether rows hold n points of each test kind.
func enoughRounds(rows []map[string]any, n int) bool {
	count := map[string]int{}
	for _, r := range rows {
		count[fmt.Sprint(r["protocol"], r["direction"], r["result"])]++
	}
	return count["tcpbothsuccess"] >= n && count["udpreceivesuccess"] >= n && count["tcpreceiveauth_failed"] >= n
}

func checkE2ERows(t *testing.T, rows []map[string]any, port string) {
	t.Helper()
	kinds := map[string]int{}
	for _, r := range rows {
		kind := fmt.Sprint(r["protocol"], "/", r["direction"], "/", r["result"])
		kinds[kind]++
		if r["source"] != "127.0.0.1" || r["port"] != port || r["host"] == nil || r["host"] == "" {
			t.Errorf("%s: tags source=%v port=%v host=%v", kind, r["source"], r["port"], r["host"])
		}
		num := func(k string) float64 {
			f, ok := r[k].(json.Number)
			if !ok {
				t.Errorf("%s: field %s = %v, want a number", kind, k, r[k])
				return -1
			}
			v, _ := f.Float64()
			return v
		}
		between := func(k string, lo, hi float64) {
			if v := num(k); v < lo || v > hi {
				t.Errorf("%s: %s = %v, want %v..%v", kind, k, v, lo, hi)
			}
		}
		switch kind {
		case "tcp/both/success":
			between("result_code", 0, 0)
			between("tx_bps", 1e6, 1e12)
			between("rx_bps", 1e6, 1e12)
			between("tx_bytes", 1, 1e12)
			between("rx_bytes", 1, 1e12)
			between("duration_seconds", 1.5, 3)
			between("connections", 4, 4)
			between("local_cpu", 0, 100)
			if r["lost_packets"] != nil {
				t.Errorf("%s: lost_packets on a TCP test", kind)
			}
		case "udp/receive/success":
			between("result_code", 0, 0)
			// 100 Mbit/s asked for; loopback may lose some under load.
			between("rx_bps", 10e6, 115e6)
			between("duration_seconds", 1.5, 3)
			between("connections", 1, 1)
			between("lost_packets", 0, 1e9)
			between("startup_lost_packets", 0, num("lost_packets"))
			between("loss_percent", 0, 100)
			between("path_loss_percent", 0, num("loss_percent"))
		case "tcp/receive/auth_failed":
			between("result_code", float64(AuthFailed), float64(AuthFailed))
			for _, k := range []string{"tx_bps", "rx_bps", "duration_seconds"} {
				if r[k] != nil {
					t.Errorf("%s: %s = %v on a test that never ran", kind, k, r[k])
				}
			}
		default:
			t.Errorf("unexpected point %s: %v", kind, r)
		}
	}
	t.Logf("points in InfluxDB: %v", kinds)
}

// buildProgram puts btest-telegraf into dir: the one make test built
// for the suite (BTEST_TELEGRAF_BIN, shared with cmd/btest-telegraf's
// tests), or a build of its own.
func buildProgram(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "btest-telegraf")
	if built := os.Getenv("BTEST_TELEGRAF_BIN"); built != "" {
		// A link to it: Telegraf finds it on the PATH the test gives.
		if _, err := os.Stat(built); err != nil {
			t.Fatalf("BTEST_TELEGRAF_BIN: %v", err)
		}
		if err := os.Symlink(built, dst); err != nil {
			t.Fatalf("BTEST_TELEGRAF_BIN: %v", err)
		}
		return
	}
	// go test puts its own go command first on PATH.
	out, err := exec.Command("go", "build", "-o", dst,
		"github.com/btest-go/btest/cmd/btest-telegraf").CombinedOutput()
	if err != nil {
		t.Fatalf("building btest-telegraf: %v\n%s", err, out)
	}
}

// startE2EServer runs our server with EC-SRP5 (what RouterOS >= 6.43
// asks for) and a UDP port range of its own.
func startE2EServer(t *testing.T) string {
	t.Helper()
	_, addr := testserver.Start(t, testPorts, core.ServerConfig{
		Auth:  core.AuthECSRP5,
		Users: []core.User{{Name: "btest", Password: "secret"}},
	})
	return addr
}

// startInfluxDB runs influxd on loopback ports with its data in dir, and
// returns its HTTP URL once it answers /ping.
func startInfluxDB(t *testing.T, influxd, dir string) string {
	t.Helper()
	httpPort, rpcPort := testPorts.TCP(t), testPorts.TCP(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
	os.MkdirAll(dir, 0o755)
	confPath := filepath.Join(dir, "influxdb.conf")
	writeFile(t, confPath, conf)
	cmd := exec.Command(influxd, "run", "-config", confPath)
	testutil.DieWithTest(cmd)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return base
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("influxd exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("influxd did not answer /ping within 30s\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queryInflux runs an InfluxQL query on database btest and returns its
// rows as column -> value maps, with the series' tags (GROUP BY) added.
func queryInflux(base, q string) ([]map[string]any, error) {
	resp, err := http.Get(base + "/query?" + url.Values{"db": {"btest"}, "epoch": {"ns"}, "q": {q}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query %q: %s: %s", q, resp.Status, body)
	}
	var res struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]any           `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if len(res.Results) != 1 {
		return nil, fmt.Errorf("query %q: %d results", q, len(res.Results))
	}
	if e := res.Results[0].Error; e != "" {
		return nil, errors.New(e)
	}
	var rows []map[string]any
	for _, s := range res.Results[0].Series {
		for _, v := range s.Values {
			row := map[string]any{}
			for i, c := range s.Columns {
				row[c] = v[i]
			}
			for k, v := range s.Tags {
				row[k] = v
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// replaceAll replaces old with new in s and fails unless it was there n
// times, so the example cannot drift away from what the test runs.
func replaceAll(t *testing.T, s, old, new string, n int) string {
	t.Helper()
	if c := strings.Count(s, old); c != n {
		t.Fatalf("example has %d of %q, want %d: update the test with the example", c, old, n)
	}
	return strings.ReplaceAll(s, old, new)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
