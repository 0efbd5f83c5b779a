package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestDashboardLoginLimit: wrong passwords from one source are bounded, a
// bounded source is not checked even with the right password, another
// source is not held back, and the bound wears off with time.
func TestDashboardLoginLimit(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := basicAuthAt(ok, "admin", "secret", &loginLimiter{}, clock)
	try := func(remote, password string) int {
		r := httptest.NewRequest(http.MethodGet, "/api/state", nil)
		r.RemoteAddr = remote
		if password != "" {
			r.SetBasicAuth("admin", password)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const a, b = "192.0.2.1:40000", "[2001:db8::1]:40000"
	for i := range 20 {
		if c := try(a, ""); c != http.StatusUnauthorized {
			t.Fatalf("request %d without a password: %d, want 401 (it is not a guess)", i, c)
		}
	}
	for i := range loginBurst {
		if c := try(a, "wrong"); c != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, c)
		}
	}
	if c := try(a, "wrong"); c != http.StatusTooManyRequests {
		t.Fatalf("wrong password %d: %d, want 429", loginBurst+1, c)
	}
	if c := try(a, "secret"); c != http.StatusTooManyRequests {
		t.Fatalf("right password while over the bound: %d, want 429 (not checked)", c)
	}
	if c := try(b, "secret"); c != http.StatusOK {
		t.Fatalf("another source's right password: %d, want 200", c)
	}
	now = now.Add(loginEvery)
	if c := try(a, "secret"); c != http.StatusOK {
		t.Fatalf("right password after %v: %d, want 200", loginEvery, c)
	}
	// Sources in one IPv6 /64 share a bound.
	for range loginBurst {
		try("[2001:db8::2]:1", "wrong")
	}
	if c := try("[2001:db8::3]:1", "wrong"); c != http.StatusTooManyRequests {
		t.Fatalf("another address in the same /64: %d, want 429", c)
	}
}

// TestDashboardLoginSources: many sources do not lock out another (there
// is no bound over all of them), and the table of sources stays within its
// bound.
func TestDashboardLoginSources(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var l loginLimiter
	for i := range 100 {
		src := loginSource(fmt.Sprintf("198.51.100.%d:1", i))
		for range loginBurst {
			if !l.take(src, now) {
				t.Fatalf("source %d held back within its own bound", i)
			}
		}
	}
	if !l.take(loginSource("203.0.113.1:1"), now) {
		t.Fatal("a new source held back by 100 others' wrong passwords")
	}
	for i := range maxLoginSources + 50 {
		src := loginSource(fmt.Sprintf("10.%d.%d.%d:1", i>>16, i>>8&255, i&255))
		now = now.Add(time.Millisecond)
		l.take(src, now)
	}
	if n := len(l.sources); n > maxLoginSources {
		t.Fatalf("%d sources remembered, bound %d", n, maxLoginSources)
	}
}
