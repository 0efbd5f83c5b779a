package caddymodule

import (
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/btest-go/btest/core/portpool"
)

// portPools holds one UDP port pool per configured range, shared by every
// config that uses that range. A reload provisions the new config before
// the old one is cleaned up, so the pool lives on and sessions of the old
// and new configs never get the same port. When a reload changes the range
// the pools differ; the operating system's bind check then still keeps two
// sessions off one server port.
var portPools = caddy.NewUsagePool()

// sharedPool is a pool in portPools.
type sharedPool struct{ *portpool.Pool }

// Destruct implements caddy.Destructor; a pool holds no sockets itself.
func (sharedPool) Destruct() error { return nil }

// sharedPortPool returns the pool for first..last and a function that gives
// this reference back (once, however often it is called).
func sharedPortPool(first, last int) (*portpool.Pool, func(), error) {
	key := fmt.Sprintf("%d-%d", first, last)
	v, _, err := portPools.LoadOrNew(key, func() (caddy.Destructor, error) {
		p, err := portpool.New(first, last)
		if err != nil {
			return nil, err
		}
		return sharedPool{p}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	release := sync.OnceFunc(func() { portPools.Delete(key) })
	return v.(sharedPool).Pool, release, nil
}

// udpPortsInUse counts the UDP ports handed out by every pool.
func udpPortsInUse() int {
	n := 0
	portPools.Range(func(_, v any) bool {
		if p, ok := v.(sharedPool); ok {
			n += p.InUse()
		}
		return true
	})
	return n
}

// Interface guard
var _ caddy.Destructor = sharedPool{}
