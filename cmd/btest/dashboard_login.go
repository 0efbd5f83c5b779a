package main

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/btest-go/btest/core"
)

// loginLimiter bounds wrong passwords at the dashboard. The page checks the
// btest user's own password, so without a bound it would be a way around
// the btest server's per-source handshake limits for anyone guessing it.
// Each source (an IPv4 address, an IPv6 /64) may try loginBurst wrong
// passwords, then one per loginEvery. A source over its bound gets 429
// without its password being checked, so guessing on does not help.
//
// There is no bound over all sources together: it would let a few
// sources, each within its own bound, lock the operator out of the page
// while the btest port itself, with its own limits, stays open to the
// same guesses.
type loginLimiter struct {
	mu      sync.Mutex
	sources map[netip.Prefix]*loginBucket
}

// loginBucket holds the password checks a source may still have, as of at.
type loginBucket struct {
	tokens float64
	at     time.Time
}

const (
	loginBurst = 5
	loginEvery = 12 * time.Second
	// maxLoginSources bounds the sources remembered; when it is full of
	// sources still paying for wrong passwords, new sources wait too.
	maxLoginSources = 4096
)

// refill adds what has accrued since b.at, up to loginBurst.
func (b *loginBucket) refill(now time.Time) {
	if b.at.IsZero() {
		b.tokens, b.at = loginBurst, now
		return
	}
	b.tokens = min(loginBurst, b.tokens+float64(now.Sub(b.at))/float64(loginEvery))
	b.at = now
}

// loginSource groups a request's remote address as the btest server
// groups clients by default: an IPv4 address, an IPv6 /64.
func loginSource(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	return core.SourceOf(a, core.DefaultSourcePrefixV4, core.DefaultSourcePrefixV6)
}

// take spends one password check of src at now, or reports that src has
// none left. Taking before the check (and giving back after a right
// password) keeps parallel guesses from all passing on one token.
func (l *loginLimiter) take(src netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = make(map[netip.Prefix]*loginBucket)
	}
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= maxLoginSources && !l.sweep(now) {
			return false
		}
		b = &loginBucket{}
		l.sources[src] = b
	}
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// giveBack returns the check a right password took.
func (l *loginLimiter) giveBack(src netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.sources[src]; b != nil {
		b.tokens = min(loginBurst, b.tokens+1)
	}
}

// sweep forgets sources whose bucket has filled up again, and reports
// whether that made room. The caller holds l.mu.
func (l *loginLimiter) sweep(now time.Time) bool {
	for src, b := range l.sources {
		if b.refill(now); b.tokens >= loginBurst {
			delete(l.sources, src)
		}
	}
	return len(l.sources) < maxLoginSources
}
