// Package portpool hands out the server's per-session UDP data ports.
//
// A btest client receives on the server's port + 256 (+k for stream k), so
// on a shared host (loopback tests, or a router testing itself) one
// session's client ports must not land on another session's server port.
// The pool hands out the lowest free port that avoids such clashes, skips
// ports the operating system reports busy, and takes ports back when their
// session ends. One pool can outlive a server configuration (Caddy reloads)
// so sessions of the old and new configuration never share a port.
package portpool

import (
	"errors"
	"fmt"
	"sync"
)

// ClientOffset is the distance from the server's UDP port to the client's.
const ClientOffset = 256

// ErrExhausted is returned when no port in the range is free.
var ErrExhausted = errors.New("udp port range exhausted")

// Pool is a set of UDP ports [First, Last]. It is safe for concurrent use.
type Pool struct {
	first, last int
	mu          sync.Mutex
	active      map[int]int // server port -> number of client streams
}

// New returns a pool for ports first..last inclusive. The client side of
// the highest port, last+256, must still be a valid port.
func New(first, last int) (*Pool, error) {
	if first < 1 || last < first || last+ClientOffset > 65535 {
		return nil, fmt.Errorf("portpool: invalid udp port range %d-%d (need 1 <= first <= last <= %d)", first, last, 65535-ClientOffset)
	}
	return &Pool{first: first, last: last, active: make(map[int]int)}, nil
}

// Range returns the pool's first and last port.
func (p *Pool) Range() (first, last int) { return p.first, p.last }

// InUse returns how many ports are handed out.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.active)
}

// Acquire finds the lowest usable port for a session with the given number
// of client streams and calls bind with it; bind opens the socket. When bind
// fails (the OS reports the port busy) Acquire tries the next port. It
// returns the port bind accepted, or an error wrapping ErrExhausted.
func (p *Pool) Acquire(streams int, bind func(port int) error) (int, error) {
	streams = max(streams, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	var lastErr error
	for port := p.first; port <= p.last; port++ {
		if port+ClientOffset+streams-1 > 65535 {
			break
		}
		if p.clashes(port, streams) {
			continue
		}
		// bind runs under the lock so two sessions never race for the
		// same port; it is a single socket() + bind().
		if err := bind(port); err != nil {
			lastErr = err
			continue
		}
		p.active[port] = streams
		return port, nil
	}
	if lastErr != nil {
		return 0, fmt.Errorf("%w (%d-%d; last bind error: %v)", ErrExhausted, p.first, p.last, lastErr)
	}
	return 0, fmt.Errorf("%w (%d-%d, %d in use)", ErrExhausted, p.first, p.last, len(p.active))
}

// clashes reports whether port, with its client ports, overlaps any active
// session's server or client ports.
func (p *Pool) clashes(port, streams int) bool {
	lo, hi := port+ClientOffset, port+ClientOffset+streams-1
	for q, n := range p.active {
		if q == port {
			return true
		}
		if q >= lo && q <= hi { // our client ports hit their server port
			return true
		}
		if port >= q+ClientOffset && port <= q+ClientOffset+n-1 { // our server port hits their client ports
			return true
		}
		if lo <= q+ClientOffset+n-1 && q+ClientOffset <= hi { // client ranges overlap
			return true
		}
	}
	return false
}

// Release returns port to the pool. Releasing a port that is not in use
// does nothing.
func (p *Pool) Release(port int) {
	p.mu.Lock()
	delete(p.active, port)
	p.mu.Unlock()
}
