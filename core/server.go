package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/core/md5auth"
	"github.com/btest-go/btest/core/portpool"
	"github.com/btest-go/btest/core/wire"
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

func (s *Server) refuse(remote netip.AddrPort, reason RefusalReason, err error) {
	s.refusals.Add(1)
	// A flood must not become a flood of log lines: one line per reason
	// a second, with the count of those left out.
	if ok, skipped := s.logLimit.allow(reason, time.Now()); ok {
		attrs := []any{"remote", remote.String(), "reason", string(reason)}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		if skipped > 0 {
			attrs = append(attrs, "not_logged_before", skipped)
		}
		s.log.Info("btest connection refused", attrs...)
	}
	s.cfg.Observer.refused(remote.Addr(), reason)
}

func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if len(s.cfg.Allow) > 0 {
		ok := false
		for _, p := range s.cfg.Allow {
			if p.Contains(a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range s.cfg.Deny {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func remoteAddrPort(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

// handleConn runs the handshake of one TCP connection: it becomes the
// primary connection of a new test, or joins a pending one.
func (s *Server) handleConn(c net.Conn) {
	remote := remoteAddrPort(c)
	if !s.allowed(remote.Addr()) {
		s.refuse(remote, RefusedNotAllowed, nil)
		c.Close()
		return
	}
	src := s.source(remote.Addr())
	if reason := s.enterHandshake(c, src); reason != "" {
		s.refuse(remote, reason, nil)
		c.Close()
		return
	}
	sess, err := s.handshake(c, remote, src)
	s.leaveHandshake(c, src)
	if err != nil || sess == nil {
		// Refused, failed, or a secondary that joined a session: the
		// session goroutine owns a joined connection.
		return
	}
	sess.run()
}

// step sets the deadline for one handshake step.
func (s *Server) step(c net.Conn) {
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
}

// handshake reads the command (or a JOIN), authenticates and answers. It
// returns a session ready to run, or nil when the connection was handled
// (refused, or attached to a pending session).
func (s *Server) handshake(c net.Conn, remote netip.AddrPort, src netip.Prefix) (*serverSession, error) {
	fail := func(reason RefusalReason, err error) (*serverSession, error) {
		s.refuse(remote, reason, err)
		c.Close()
		return nil, err
	}
	// A RouterOS client sends its command as soon as HELLO arrives; a
	// connection that does not gives its slot back soon.
	c.SetDeadline(time.Now().Add(min(s.cfg.CommandTimeout, s.cfg.HandshakeTimeout)))
	if _, err := c.Write(wire.Hello[:]); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("writing hello: %w", err))
	}
	var first [wire.CommandSize]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("reading command: %w", timeoutErr(err)))
	}
	if wire.LooksLikeJoin(first[:]) {
		var j wire.Join
		if err := j.Unmarshal(first[:]); err != nil {
			return fail(RefusedBadCommand, err)
		}
		if !s.join(j.Token, remote, c) {
			return fail(RefusedUnknownToken, fmt.Errorf("join with unknown token %#04x", j.Token))
		}
		return nil, nil
	}
	var cmd wire.Command
	if err := cmd.Unmarshal(first[:]); err != nil {
		return fail(RefusedBadCommand, err)
	}
	if int(cmd.ConnCount) > s.cfg.MaxConnections {
		return fail(RefusedConnections, fmt.Errorf("%w: %d connections requested, at most %d allowed", ErrLimit, cmd.ConnCount, s.cfg.MaxConnections))
	}
	if reason, err := s.allowCommand(src); err != nil {
		return fail(reason, err)
	}
	sess := s.newSession(c, remote, cmd)
	sess.src = src
	if reason, err := s.admit(sess); err != nil {
		return fail(reason, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.release(sess)
		}
	}()
	user, err := s.authenticate(c, remote)
	if err != nil {
		if errors.Is(err, ErrAuthFailed) {
			return fail(RefusedAuthFailed, err)
		}
		return fail(RefusedHandshakeError, err)
	}
	sess.info.User = user
	result := wire.Result{Kind: wire.ResultOK}
	if cmd.Proto == wire.TCP && cmd.ConnCount > 1 {
		result.Token = s.register(sess)
	}
	msg := result.Marshal()
	out := msg[:]
	if cmd.Proto == wire.UDP {
		port, err := s.openUDP(sess)
		if err != nil {
			if errors.Is(err, portpool.ErrExhausted) {
				return fail(RefusedUDPPorts, fmt.Errorf("%w: %w", ErrLimit, err))
			}
			return fail(RefusedUnsupported, err)
		}
		p := wire.MarshalPort(uint16(port))
		out = append(out, p[:]...) // one write: RouterOS sends them together
	}
	s.step(c)
	if _, err := c.Write(out); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("writing result: %w", err))
	}
	c.SetDeadline(time.Time{})
	ok = true
	return sess, nil
}

// authenticate runs the configured authentication and returns the user.
func (s *Server) authenticate(c net.Conn, remote netip.AddrPort) (string, error) {
	switch s.cfg.Auth {
	case AuthNone:
		return "", nil
	case AuthMD5:
		return s.authMD5(c)
	case AuthECSRP5:
		return s.authECSRP5(c)
	}
	return "", fmt.Errorf("%w: auth mode %s", ErrUnsupported, s.cfg.Auth)
}

func (s *Server) authMD5(c net.Conn) (string, error) {
	ch, err := md5auth.NewChallenge(nil)
	if err != nil {
		return "", err
	}
	msg := append([]byte{byte(wire.ResultMD5), 0, 0, 0}, ch[:]...)
	s.step(c)
	if _, err := c.Write(msg); err != nil {
		return "", fmt.Errorf("writing md5 challenge: %w", err)
	}
	// Read all 48 bytes even when a client sends the hash and the user
	// field in two writes (btest-opensource does).
	var buf [md5auth.ReplySize]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return "", fmt.Errorf("reading md5 reply: %w", timeoutErr(err))
	}
	var r md5auth.Reply
	if err := r.Unmarshal(buf[:]); err != nil {
		return "", err
	}
	name := r.UserName()
	u, known := s.lookupMD5(r)
	// Verify against a dummy password for unknown users so both paths
	// take the same time.
	pw := []byte(u.Password)
	if !known {
		pw = []byte("\x00unknown-user")
	}
	if !r.Verify(pw, ch) || !known {
		fail := wire.Result{Kind: wire.ResultAuthFailed}.Marshal()
		c.Write(fail[:])
		return "", fmt.Errorf("%w: md5 for user %q", ErrAuthFailed, name)
	}
	return u.Name, nil
}

// lookupMD5 finds the user a reply names. Names of 32 bytes or more arrive
// cut to 32, so configured names are compared in their wire form.
func (s *Server) lookupMD5(r md5auth.Reply) (User, bool) {
	if u, ok := s.users[r.UserName()]; ok {
		return u, true
	}
	for _, u := range s.users {
		if len(u.Name) >= md5auth.UserFieldSize && md5auth.UserFieldFor(u.Name) == r.User {
			return u, true
		}
	}
	return User{}, false
}

// admit applies the session limits and counts the session.
func (s *Server) admit(sess *serverSession) (RefusalReason, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sourceLocked(sess.src, time.Now())
	switch {
	case s.closed:
		return RefusedShuttingDown, fmt.Errorf("%w: server is shutting down", ErrLimit)
	case len(s.sessions) >= s.cfg.MaxSessions:
		return RefusedSessions, fmt.Errorf("%w: %d sessions running", ErrLimit, len(s.sessions))
	case st.sessions >= s.cfg.MaxSessionsPerIP:
		return RefusedSessionsPerIP, fmt.Errorf("%w: %d sessions from %s", ErrLimit, st.sessions, sess.src)
	}
	s.sessions[sess] = struct{}{}
	st.sessions++
	return "", nil
}

// release forgets a session and frees its token and UDP port.
func (s *Server) release(sess *serverSession) {
	s.mu.Lock()
	if _, ok := s.sessions[sess]; ok {
		delete(s.sessions, sess)
		if st := s.sources[sess.src]; st != nil {
			st.sessions--
		}
	}
	if sess.token != 0 && s.pending[sess.token] == sess {
		delete(s.pending, sess.token)
	}
	s.expectJoinsLocked(sess, -sess.joinsLeft)
	s.mu.Unlock()
	sess.closeUDP()
}

// register gives a multi-connection session a fresh token. Tokens have a
// high byte >= 2 so a JOIN can never be mistaken for a COMMAND.
func (s *Server) register(sess *serverSession) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		t := uint16(rand.N(0xfe00)) + 0x0200
		if t&0xff == 0 {
			continue // keep both bytes non-zero, as RouterOS captures show
		}
		if _, busy := s.pending[t]; !busy {
			s.pending[t] = sess
			sess.token = t
			s.expectJoinsLocked(sess, int(sess.cmd.ConnCount)-1)
			return t
		}
	}
}

// join hands a secondary connection to the pending session with token.
// Only connections from the primary's IP address may join.
func (s *Server) join(token uint16, remote netip.AddrPort, c net.Conn) bool {
	s.mu.Lock()
	sess := s.pending[token]
	s.mu.Unlock()
	if sess == nil || sess.info.Remote.Addr() != remote.Addr() {
		return false
	}
	c.SetDeadline(time.Time{})
	return sess.addConn(c)
}

func timeoutErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
