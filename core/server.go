package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/core/portpool"
)

// Server is a btest server. Create it with NewServer, feed it listeners with
// Serve, and end it with Shutdown or Close. A Server keeps the configuration
// it was made with; to change it, make a new Server (sessions of the old one
// finish under the old configuration).
type Server struct {
	cfg   ServerConfig
	log   *slog.Logger
	users map[string]User
	// verifiers holds each user's EC-SRP5 verifier (AuthECSRP5 only).
	verifiers map[string]ecsrp5.Verifier
	ports     *portpool.Pool

	readBuf  readBuf // data connections' receive buffers, within the memory budget
	nextID   atomic.Uint64
	refusals atomic.Uint64

	ctx    context.Context // ends every session when cancelled
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	sessions  map[*serverSession]struct{}
	pending   map[uint16]*serverSession // multi-connection tests awaiting JOINs
	conns     sync.WaitGroup            // every connection goroutine
	// handshaking holds the connections in their handshake, so Shutdown
	// can close them when its context ends.
	handshaking map[net.Conn]struct{}
	sources     map[netip.Prefix]*sourceState
	lastSweep   time.Time
	rate        tokenBucket // new tests, all sources
	logLimit    logLimiter  // refusal log lines
	smallUDPBuf bufferWarning
}

// NewServer checks cfg, applies defaults and returns a server that is not
// yet listening.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ports := cfg.UDPPorts
	if ports == nil {
		var err error
		if ports, err = portpool.New(cfg.UDPPortFirst, cfg.UDPPortLast); err != nil {
			return nil, fmt.Errorf("btest server: %w", err)
		}
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		users:       make(map[string]User, len(cfg.Users)),
		ports:       ports,
		readBuf:     readBuf{pool: &smallBufs, grow: true, budget: newBufBudget(cfg.ReadBufferMemory)},
		listeners:   make(map[net.Listener]struct{}),
		sessions:    make(map[*serverSession]struct{}),
		pending:     make(map[uint16]*serverSession),
		handshaking: make(map[net.Conn]struct{}),
		sources:     make(map[netip.Prefix]*sourceState),
	}
	for _, u := range cfg.Users {
		s.users[u.Name] = u
	}
	if cfg.Auth == AuthECSRP5 {
		var err error
		if s.verifiers, err = verifiers(cfg.Users); err != nil {
			return nil, err
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts connections on ln until ln fails, Shutdown or Close is
// called, or ctx ends (which closes the server as Close does). It always
// returns a non-nil error: ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: wait, do not spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("btest accept failed, retrying", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("btest server: accept: %w", err)
		}
		backoff = 0
		if !s.track() {
			c.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.conns.Done()
			s.handleConn(c)
		}()
	}
}

// track registers a connection goroutine unless the server is closed.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// closeListeners stops accepting; it reports whether this call closed them.
func (s *Server) closeListeners() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	return true
}

// Shutdown stops accepting, lets running tests and handshakes go on until
// ctx ends, then ends the tests and closes the connections still in their
// handshake, and returns once every connection goroutine has finished:
// promptly after ctx ends, since every goroutine then waits on a closed
// socket.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.closeHandshakes()
	<-done
	return ctx.Err()
}

// Close stops accepting, ends every running test and handshake at once
// and waits for their goroutines to finish.
func (s *Server) Close() error {
	s.closeListeners()
	s.cancel()
	s.closeHandshakes()
	s.conns.Wait()
	return nil
}

// ActiveSessions returns the number of running tests.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Refusals returns how many connections were turned away so far.
func (s *Server) Refusals() uint64 { return s.refusals.Load() }

// UDPPorts returns the server's UDP port pool.
func (s *Server) UDPPorts() *portpool.Pool { return s.ports }
