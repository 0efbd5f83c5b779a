package main

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// loginLimiter bounds wrong passwords at the dashboard. The page checks the
// btest user's own password, so without a bound it would be a way around
// the btest server's per-source handshake limits for anyone guessing it.
// Each source (an IPv4 address, an IPv6 /64) may get loginBurst wrong
// passwords, then one per loginEvery; all sources together loginTotalBurst,
// then one a second. A source that is over its bound gets 429 without its
// password being checked, so guessing on does not help.
type loginLimiter struct {
	mu      sync.Mutex
	sources map[netip.Prefix]*loginBucket
	total   loginBucket
}

// loginBucket holds the wrong passwords a source may still send, as of at.
type loginBucket struct {
	tokens float64
	at     time.Time
}

const (
	loginBurst      = 5
	loginEvery      = 12 * time.Second
	loginTotalBurst = 30
	loginTotalEvery = time.Second
	// maxLoginSources bounds the sources remembered; when it is full of
	// sources still paying for wrong passwords, new sources wait too.
	maxLoginSources = 4096
)

// refill adds what has accrued since b.at, up to burst.
func (b *loginBucket) refill(now time.Time, burst float64, every time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = burst, now
		return
	}
	b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(every))
	b.at = now
}

// loginSource groups a request's remote address as the btest server
// groups clients: an IPv4 address, an IPv6 /64.
func loginSource(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 32
	}
	p, _ := a.Prefix(bits)
	return p
}

// mayTry reports whether src may have a password checked at now.
func (l *loginLimiter) mayTry(src netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total.refill(now, loginTotalBurst, loginTotalEvery)
	if l.total.tokens < 1 {
		return false
	}
	b := l.sources[src]
	if b == nil {
		return len(l.sources) < maxLoginSources || l.sweep(now)
	}
	b.refill(now, loginBurst, loginEvery)
	return b.tokens >= 1
}

// failed charges a wrong password from src.
func (l *loginLimiter) failed(src netip.Prefix, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil {
		l.sources = make(map[netip.Prefix]*loginBucket)
	}
	b := l.sources[src]
	if b == nil {
		if len(l.sources) >= maxLoginSources && !l.sweep(now) {
			return
		}
		b = &loginBucket{}
		l.sources[src] = b
	}
	b.refill(now, loginBurst, loginEvery)
	b.tokens--
	l.total.refill(now, loginTotalBurst, loginTotalEvery)
	l.total.tokens--
}

// sweep forgets sources whose bucket has filled up again, and reports
// whether that made room. The caller holds l.mu.
func (l *loginLimiter) sweep(now time.Time) bool {
	for src, b := range l.sources {
		if b.refill(now, loginBurst, loginEvery); b.tokens >= loginBurst {
			delete(l.sources, src)
		}
	}
	return len(l.sources) < maxLoginSources
}
