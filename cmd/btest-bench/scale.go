package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btest-go/btest/core"
)

// scaleSessions and scaleRate are the scale benchmark's load: many slow
// tests against one server, as a public server sees.
const (
	scaleSessions = 200
	scaleRate     = 1_000_000
)

// runScale holds 200 concurrent 1 Mbit/s sessions against one server and
// prints its memory and goroutines per session, and whether they return to
// the idle level after the sessions end.
func runScale(ctx context.Context, e *env) error {
	dbgPort, err := freePort()
	if err != nil {
		return err
	}
	dbg := "127.0.0.1:" + strconv.Itoa(dbgPort)
	srv, addr, err := startOurServer(ctx, e.btest, "--debug-addr", dbg)
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	rss0, g0 := rssKiB(pid), goroutines(dbg)
	if g0 < 0 {
		fmt.Println("  (no pprof in this btest build: goroutine counts read -1 and the heap is measured without a forced GC; build with -tags pprof for both)")
	}

	fmt.Printf("scale: %d sessions at %s each for %v, two rounds\n", scaleSessions, core.FormatBitRate(scaleRate), e.duration)
	fmt.Printf("  idle: RSS %d KiB, %d goroutines\n", rss0, g0)
	var after []int64
	for round := 1; round <= 2; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := 0
		var firstErr error
		for range scaleSessions {
			wg.Go(func() {
				_, err := core.RunClient(ctx, core.ClientConfig{
					Address: addr, Direction: core.Receive, RemoteTxSpeed: scaleRate, Duration: e.duration,
				})
				if err != nil {
					mu.Lock()
					failed++
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			})
		}
		time.Sleep(e.duration * 8 / 10)
		rss1, g1 := rssKiB(pid), goroutines(dbg)
		wg.Wait()
		time.Sleep(2 * time.Second)
		rss2, g2 := rssKiB(pid), goroutines(dbg)
		heap := heapInuseKiB(dbg)
		after = append(after, heap)
		fmt.Printf("  round %d: loaded RSS %d KiB, %d goroutines -> %.1f KiB and %.1f goroutines per active session (target < 256 KiB); after: RSS %d KiB, heap in use %d KiB (after GC), %d goroutines; %d sessions failed\n",
			round, rss1, g1, float64(rss1-rss0)/scaleSessions, float64(g1-g0)/scaleSessions, rss2, heap, g2, failed)
		if firstErr != nil {
			fmt.Fprintln(os.Stderr, "scale session:", firstErr)
		}
	}
	fmt.Printf("  heap growth from round 1 to round 2, after the sessions ended: %+d KiB\n", after[1]-after[0])
	return nil
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// goroutines reads the server's goroutine count from its pprof endpoint;
// -1 when there is none (a btest built without -tags pprof).
func goroutines(addr string) int {
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	first, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	return n
}

// heapInuseKiB forces a GC in the server (pprof's gc=1) and reads its heap
// in use from expvar: what the process still holds, unlike RSS, which keeps
// freed pages until the runtime returns them.
func heapInuseKiB(addr string) int64 {
	// Two collections: the first moves pooled buffers to sync.Pool's victim
	// cache, the second frees them, so only live memory remains.
	for range 2 {
		if resp, err := http.Get("http://" + addr + "/debug/pprof/heap?gc=1"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resp, err := http.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var v struct {
		Memstats struct {
			HeapInuse int64
		} `json:"memstats"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return -1
	}
	return v.Memstats.HeapInuse / 1024
}
