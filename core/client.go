package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/btest-go/btest/core/md5auth"
	"github.com/btest-go/btest/core/wire"
)

// errTestDone is the cause of a test that ran for its whole duration.
var errTestDone = errors.New("test duration reached")

// clientConn is the outcome of the client's handshake.
type clientConn struct {
	cfg     ClientConfig
	addr    string
	cmd     wire.Command
	primary net.Conn
	token   uint16
	udpPort int // server's UDP data port (UDP tests)
}

// RunClient runs one test against a btest server (RouterOS or ours) and
// returns its summary. It reports progress through cfg.OnInterval. The test
// ends after cfg.Duration, or when ctx is cancelled (a normal end: the
// summary covers the time run), or when the server ends it (an error).
// Errors wrap ErrAuthFailed, ErrRefused, ErrUnsupported, ErrTimeout or
// ErrProtocol where one applies.
func RunClient(ctx context.Context, cfg ClientConfig) (Summary, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	if cfg.UDP && !udpClientSupported {
		return Summary{}, errNoUDP
	}
	cc := &clientConn{cfg: cfg, addr: withDefaultPort(cfg.Address), cmd: commandFor(&cfg)}
	if err := cc.dial(ctx); err != nil {
		return Summary{}, err
	}
	defer cc.primary.Close()
	var (
		sum Summary
		err error
	)
	if cfg.UDP {
		sum, err = cc.runUDP(ctx)
	} else {
		sum, err = cc.runTCP(ctx)
	}
	sum.Proto, sum.Direction = protoOf(cc.cmd.Proto), cfg.Direction
	if sum.Connections == 0 {
		sum.Connections = cfg.Connections
	}
	return sum, err
}

// commandFor builds the wire command for a client configuration.
func commandFor(cfg *ClientConfig) wire.Command {
	cmd := wire.Command{
		Proto:         wire.TCP,
		Direction:     serverView(cfg.Direction),
		Random:        cfg.Random,
		ConnCount:     uint8(cfg.Connections),
		TxSize:        DefaultTCPTxSize,
		RemoteTxSpeed: clamp32(cfg.RemoteTxSpeed),
		LocalTxSpeed:  clamp32(cfg.LocalTxSpeed),
	}
	if cfg.UDP {
		cmd.Proto = wire.UDP
		cmd.TxSize = uint16(cfg.UDPTxSize)
	}
	return cmd
}

// serverView maps a client direction to the command's direction bits.
func serverView(d Direction) wire.Direction {
	switch d {
	case Transmit:
		return wire.ServerReceives
	case Receive:
		return wire.ServerSends
	}
	return wire.Both
}

// clamp32 fits a bit rate into the 32-bit wire field. Rates of 2^32 bit/s
// and more are sent as the largest value, not wrapped to something small.
func clamp32(v uint64) uint32 {
	return uint32(min(v, math.MaxUint32))
}

func withDefaultPort(a string) string {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	// A bare IPv6 address ("::1") or a host name.
	return net.JoinHostPort(trimBrackets(a), strconv.Itoa(DefaultPort))
}

func trimBrackets(a string) string {
	if len(a) > 1 && a[0] == '[' && a[len(a)-1] == ']' {
		return a[1 : len(a)-1]
	}
	return a
}

// dial connects the primary connection and runs the handshake.
func (cc *clientConn) dial(ctx context.Context) error {
	d := cc.dialer()
	c, err := d.DialContext(ctx, "tcp", cc.addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", cc.addr, timeoutErr(err))
	}
	// Cancelling ctx during the handshake closes the socket, so no step
	// outlives the caller.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = cc.handshake(c)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		c.Close()
		return err
	}
	cc.primary = c
	return nil
}

// dialer returns the dialer for the test's TCP connections.
func (cc *clientConn) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: cc.cfg.HandshakeTimeout}
	if cc.cfg.LocalAddress != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(cc.cfg.LocalAddress)}
	}
	return d
}

func (cc *clientConn) step(c net.Conn) {
	c.SetDeadline(time.Now().Add(cc.cfg.HandshakeTimeout))
}

// closedEarly reports whether a handshake read failed because the server
// closed the connection before sending a byte of that step: a clean close
// or a reset.
func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// readFull reads len(b) bytes of handshake step what.
func readFull(c net.Conn, b []byte, what string) error {
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("reading %s: %w", what, timeoutErr(err))
	}
	return nil
}

func (cc *clientConn) handshake(c net.Conn) error {
	cc.step(c)
	var hello [wire.HelloSize]byte
	if err := readFull(c, hello[:], "hello"); err != nil {
		if closedEarly(err) {
			// Our server closes before its greeting when the address
			// is not allowed or too many handshakes are under way
			// (docs/protocol.md, §5.3 How our server refuses).
			return fmt.Errorf("%w: the server closed the connection before its greeting (address not allowed, or too many connections in handshake)", ErrRefused)
		}
		return err
	}
	if err := wire.CheckHello(hello[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	cmd := cc.cmd.Marshal()
	if _, err := c.Write(cmd[:]); err != nil {
		return fmt.Errorf("writing command: %w", err)
	}
	res, err := cc.readResult(c, "result")
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the server closed the connection after the command (busy, not allowed, or over a limit)", ErrRefused)
		}
		return err
	}
	switch res.Kind {
	case wire.ResultMD5:
		if res, err = cc.authMD5(c); err != nil {
			return err
		}
	case wire.ResultECSRP5:
		cc.step(c)
		if err := clientECSRP5(c, cc.cfg.User, cc.cfg.Password); err != nil {
			return err
		}
		if res, err = cc.readResult(c, "result after ec-srp5"); err != nil {
			return err
		}
	}
	switch res.Kind {
	case wire.ResultAuthFailed:
		return fmt.Errorf("%w: the server rejected user %q", ErrAuthFailed, cc.cfg.User)
	case wire.ResultOK:
	default:
		return fmt.Errorf("%w: unexpected %s result after authentication", ErrProtocol, res.Kind)
	}
	cc.token = res.Token
	if cc.cmd.Proto == wire.UDP {
		port, err := cc.readPort(c)
		if err != nil {
			return err
		}
		cc.udpPort = int(port)
	}
	c.SetDeadline(time.Time{})
	return nil
}

func (cc *clientConn) readResult(c net.Conn, what string) (wire.Result, error) {
	cc.step(c)
	var b [wire.ResultSize]byte
	if err := readFull(c, b[:], what); err != nil {
		return wire.Result{}, err
	}
	var r wire.Result
	if err := r.Unmarshal(b[:]); err != nil {
		return r, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return r, nil
}

func (cc *clientConn) authMD5(c net.Conn) (wire.Result, error) {
	var ch md5auth.Challenge
	if err := readFull(c, ch[:], "md5 challenge"); err != nil {
		return wire.Result{}, err
	}
	reply := md5auth.NewReply(cc.cfg.User, cc.cfg.Password, ch).Marshal()
	if _, err := c.Write(reply[:]); err != nil {
		return wire.Result{}, fmt.Errorf("writing md5 reply: %w", err)
	}
	res, err := cc.readResult(c, "md5 result")
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return res, fmt.Errorf("%w: the server closed the connection after the md5 reply", ErrAuthFailed)
	}
	return res, err
}

// readPort reads the UDP port announcement. Some servers send the OK word
// twice after MD5 authentication; a port that reads 01 00 followed by
// 00 00 is that duplicate, and the real port follows.
func (cc *clientConn) readPort(c net.Conn) (uint16, error) {
	var b [wire.PortSize]byte
	if err := readFull(c, b[:], "udp port"); err != nil {
		return 0, err
	}
	if b == [2]byte{0x01, 0x00} {
		var rest [2]byte
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.ReadFull(c, rest[:]); err == nil && rest == [2]byte{} {
			cc.step(c)
			if err := readFull(c, b[:], "udp port"); err != nil {
				return 0, err
			}
		}
		cc.step(c)
	}
	p, err := wire.UnmarshalPort(b[:])
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return p, nil
}

// dialSecondaries opens the extra connections of a multi-connection TCP
// test: each reads its HELLO and sends the JOIN, and waits for no reply
// (RouterOS sends none).
func (cc *clientConn) dialSecondaries(ctx context.Context) ([]net.Conn, error) {
	n := cc.cfg.Connections - 1
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	join := wire.Join{Token: cc.token}.Marshal()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := cc.dialer()
			c, err := d.DialContext(ctx, "tcp", cc.addr)
			if err != nil {
				errs[i] = fmt.Errorf("connecting secondary %d: %w", i+1, timeoutErr(err))
				return
			}
			cc.step(c)
			var hello [wire.HelloSize]byte
			if err := readFull(c, hello[:], "hello on secondary"); err != nil {
				c.Close()
				errs[i] = err
				return
			}
			if _, err := c.Write(join[:]); err != nil {
				c.Close()
				errs[i] = fmt.Errorf("writing join: %w", err)
				return
			}
			c.SetDeadline(time.Time{})
			conns[i] = c
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}
