package core

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/core/portpool"
)

// AuthMode selects how the server authenticates clients.
type AuthMode uint8

// Authentication modes.
const (
	// AuthNone accepts every client (RouterOS authenticate=no).
	AuthNone AuthMode = iota
	// AuthMD5 is the legacy challenge-response of RouterOS < 6.43. It
	// needs plaintext passwords.
	AuthMD5
	// AuthECSRP5 is what RouterOS >= 6.43 servers ask for.
	AuthECSRP5
)

// String returns "none", "md5" or "ecsrp5".
func (m AuthMode) String() string {
	switch m {
	case AuthNone:
		return "none"
	case AuthMD5:
		return "md5"
	case AuthECSRP5:
		return "ecsrp5"
	}
	return fmt.Sprintf("auth(%d)", uint8(m))
}

// ParseAuthMode parses "none", "md5" or "ecsrp5".
func ParseAuthMode(s string) (AuthMode, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return AuthNone, nil
	case "md5":
		return AuthMD5, nil
	case "ecsrp5", "ec-srp5":
		return AuthECSRP5, nil
	}
	return 0, fmt.Errorf("unknown auth mode %q (want none, md5 or ecsrp5)", s)
}

// User is one account on the server.
type User struct {
	Name string
	// Password is the plaintext password. MD5 authentication needs it;
	// EC-SRP5 needs it or Verifier.
	Password string
	// Verifier is a stored EC-SRP5 verifier (salt, x_gamma, parity), as
	// RouterOS keeps it, so the server needs no plaintext password. When
	// set it is used for EC-SRP5 instead of Password.
	Verifier *ecsrp5.Verifier
}

// Defaults for ServerConfig fields left at zero.
const (
	DefaultMaxSessions      = 100 // RouterOS max-sessions default
	DefaultMaxSessionsPerIP = 20
	DefaultMaxConnections   = 100 // per session; RouterOS clients default to 20
	DefaultMaxHandshakes    = 256
	DefaultMaxDuration      = time.Hour
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultJoinTimeout      = 10 * time.Second
	DefaultUDPIdleTimeout   = 15 * time.Second
	DefaultUDPPortFirst     = 2001
	DefaultUDPPortLast      = 2999

	// DefaultMaxHandshakesPerSource lets one source (see SourcePrefixV4)
	// hold 16 of the 256 handshake slots: a RouterOS client needs one at
	// a time, plus one per connection it joins (those are allowed on
	// top while its test waits for them).
	DefaultMaxHandshakesPerSource = 16
	// DefaultMaxHandshakeRate caps new tests (commands) per second over
	// all clients: an EC-SRP5 handshake costs the server about 0.2 ms of
	// CPU, so 200 a second cost at most 4% of one core.
	DefaultMaxHandshakeRate = 200
	// DefaultMaxHandshakeRatePerSource caps new tests per second from one
	// source, with a burst of as many; a person or a script starts one a
	// second at most.
	DefaultMaxHandshakeRatePerSource = 10
	// DefaultSourcePrefixV4 and DefaultSourcePrefixV6 group client
	// addresses into sources for the per-source limits: one IPv4 address,
	// one IPv6 /64 (what a single customer is routed).
	DefaultSourcePrefixV4 = 32
	DefaultSourcePrefixV6 = 64
	// DefaultCommandTimeout bounds the wait for the command after HELLO:
	// a RouterOS client sends it at once, so only a round trip is needed.
	DefaultCommandTimeout = 3 * time.Second
	// DefaultProgressTimeout ends a test in which nothing moved in a
	// direction that should carry data (TCP) or no status message arrived
	// (UDP) for so long.
	DefaultProgressTimeout = 15 * time.Second
	// DefaultReadBufferMemory is the budget of large (1 MiB) receive
	// buffers a server hands to fast connections; the others keep 32 KiB.
	DefaultReadBufferMemory = 128 << 20
)

// MaxUserName is the longest user name a server takes: what EC-SRP5's
// first message can carry (docs/protocol.md, §7 EC-SRP5 authentication).
// MD5 carries only the first 32 bytes of a name, so the longer names work
// with EC-SRP5 only.
const MaxUserName = ecsrp5.MaxUserLen

// ServerConfig configures a Server. Zero values take the defaults above.
type ServerConfig struct {
	// Auth selects the authentication every client must pass.
	Auth AuthMode
	// Users are the accounts for AuthMD5 and AuthECSRP5.
	Users []User

	// MaxSessions caps concurrent tests.
	MaxSessions int
	// MaxSessionsPerIP caps concurrent tests from one source: an IPv4
	// address or an IPv6 /64 by default (SourcePrefixV4, SourcePrefixV6).
	MaxSessionsPerIP int
	// MaxConnections caps the TCP connections (or UDP streams) of one test.
	MaxConnections int
	// MaxHandshakes caps connections that have not finished their handshake.
	MaxHandshakes int
	// MaxHandshakesPerSource caps the connections of one source in their
	// handshake; the secondary connections a test of that source still
	// waits for are allowed beyond it.
	MaxHandshakesPerSource int
	// MaxHandshakeRate caps new tests (commands) per second from all
	// clients, MaxHandshakeRatePerSource from one source; each allows a
	// burst of one second's worth. Negative means no limit.
	MaxHandshakeRate, MaxHandshakeRatePerSource int
	// SourcePrefixV4 and SourcePrefixV6 are the prefix lengths that group
	// client addresses into one source for the per-source limits.
	SourcePrefixV4, SourcePrefixV6 int
	// CommandTimeout bounds the wait for the first command after HELLO,
	// which RouterOS clients send at once.
	CommandTimeout time.Duration
	// ProgressTimeout ends a test with ErrStalled when, for so long, no
	// byte moved in a TCP direction that should carry data, or no status
	// message arrived in a UDP test.
	ProgressTimeout time.Duration
	// MaxStatusRate closes the control connection of a UDP test that
	// sends more than this many status messages' worth of bytes in a
	// second (a real client sends one).
	MaxStatusRate int
	// ReadBufferMemory is the budget, in bytes, of large receive buffers
	// for fast TCP connections; the others read into 32 KiB.
	ReadBufferMemory int64
	// MaxDuration ends a test that runs longer. Negative means no limit.
	MaxDuration time.Duration
	// MaxTxRate caps what the server sends per test, in bit/s (0 = no cap).
	// A client's remote-tx-speed below it still applies.
	MaxTxRate uint64
	// HandshakeTimeout bounds each handshake step (read of the command,
	// authentication messages).
	HandshakeTimeout time.Duration
	// JoinTimeout bounds the wait for the secondary connections of a
	// multi-connection test; the test then starts with those that came.
	JoinTimeout time.Duration
	// UDPIdleTimeout, when set, replaces ProgressTimeout for UDP tests
	// (it predates ProgressTimeout).
	UDPIdleTimeout time.Duration

	// UDPPorts is the pool of UDP data ports. When nil the server makes one
	// from UDPPortFirst..UDPPortLast. Sharing a pool between servers keeps
	// their sessions off each other's ports.
	UDPPorts *portpool.Pool
	// UDPPortFirst and UDPPortLast bound the UDP data ports.
	UDPPortFirst, UDPPortLast int

	// Allow, when not empty, admits only clients inside these prefixes.
	Allow []netip.Prefix
	// Deny refuses clients inside these prefixes (checked after Allow).
	Deny []netip.Prefix

	// SocketBuffer sets SO_SNDBUF/SO_RCVBUF on data connections; 0 keeps
	// the kernel's autotuning, which is faster on Linux.
	SocketBuffer int

	// Logger receives structured logs; nil uses slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about sessions and refusals (metrics,
	// dashboards). Combine several with JoinObservers.
	Observer *Observer

	// udpHooks, set by this package's tests only, steer and observe the
	// server's UDP engine.
	udpHooks *udpTestHooks
}

// orDefault sets *v to d when it is the zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

func (c *ServerConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxSessions, DefaultMaxSessions)
	def(&c.MaxSessionsPerIP, DefaultMaxSessionsPerIP)
	def(&c.MaxConnections, DefaultMaxConnections)
	def(&c.MaxHandshakes, DefaultMaxHandshakes)
	def(&c.MaxHandshakesPerSource, DefaultMaxHandshakesPerSource)
	orDefault(&c.MaxHandshakeRate, DefaultMaxHandshakeRate)
	orDefault(&c.MaxHandshakeRatePerSource, DefaultMaxHandshakeRatePerSource)
	def(&c.SourcePrefixV4, DefaultSourcePrefixV4)
	def(&c.SourcePrefixV6, DefaultSourcePrefixV6)
	def(&c.MaxStatusRate, DefaultMaxStatusRate)
	if c.ReadBufferMemory <= 0 {
		c.ReadBufferMemory = DefaultReadBufferMemory
	}
	def(&c.UDPPortFirst, DefaultUDPPortFirst)
	def(&c.UDPPortLast, DefaultUDPPortLast)
	orDefault(&c.MaxDuration, DefaultMaxDuration)
	orDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	orDefault(&c.JoinTimeout, DefaultJoinTimeout)
	orDefault(&c.CommandTimeout, DefaultCommandTimeout)
	orDefault(&c.ProgressTimeout, DefaultProgressTimeout)
	orDefault(&c.UDPIdleTimeout, c.ProgressTimeout)
	c.MaxConnections = min(c.MaxConnections, 255)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *ServerConfig) validate() error {
	if c.Auth > AuthECSRP5 {
		return fmt.Errorf("btest server: unknown auth mode %d", c.Auth)
	}
	if c.SourcePrefixV4 > 32 || c.SourcePrefixV6 > 128 {
		return fmt.Errorf("btest server: source prefix /%d (IPv4, at most 32) or /%d (IPv6, at most 128) too long", c.SourcePrefixV4, c.SourcePrefixV6)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HandshakeTimeout", c.HandshakeTimeout}, {"CommandTimeout", c.CommandTimeout}, {"ProgressTimeout", c.ProgressTimeout},
		{"UDPIdleTimeout", c.UDPIdleTimeout}, {"JoinTimeout", c.JoinTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("btest server: %s %v is negative", d.name, d.v)
		}
	}
	if c.Auth != AuthNone && len(c.Users) == 0 {
		return fmt.Errorf("btest server: auth %s needs at least one user", c.Auth)
	}
	seen := make(map[string]bool)
	for _, u := range c.Users {
		if u.Name == "" {
			return fmt.Errorf("btest server: a user has an empty name")
		}
		if seen[u.Name] {
			return fmt.Errorf("btest server: user %q is configured twice", u.Name)
		}
		seen[u.Name] = true
		if c.Auth == AuthMD5 && u.Verifier != nil && u.Password == "" {
			return fmt.Errorf("btest server: user %q has only an EC-SRP5 verifier; md5 auth needs a password", u.Name)
		}
		if len(u.Name) > MaxUserName || strings.IndexByte(u.Name, 0) >= 0 {
			return fmt.Errorf("btest server: user name %q is longer than %d bytes or contains NUL", u.Name, MaxUserName)
		}
	}
	return nil
}

// Direction is a test direction from the client's point of view, as
// RouterOS's /tool bandwidth-test names it.
type Direction uint8

// Client directions.
const (
	// Receive: the server sends, the client receives (RouterOS default).
	Receive Direction = iota
	// Transmit: the client sends, the server receives.
	Transmit
	// Both directions at once.
	Both
)

// String returns "receive", "transmit" or "both".
func (d Direction) String() string {
	switch d {
	case Receive:
		return "receive"
	case Transmit:
		return "transmit"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// MarshalText encodes d as its name, so JSON shows "receive", not 0.
func (d Direction) MarshalText() ([]byte, error) {
	if d > Both {
		return nil, fmt.Errorf("unknown direction %d", uint8(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses a name as ParseDirection does.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Proto is a test's transport.
type Proto uint8

// Transports.
const (
	ProtoTCP Proto = iota
	ProtoUDP
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// MarshalText encodes p as its name.
func (p Proto) MarshalText() ([]byte, error) {
	if p > ProtoUDP {
		return nil, fmt.Errorf("unknown proto %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses "tcp" or "udp".
func (p *Proto) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "tcp":
		*p = ProtoTCP
	case "udp":
		*p = ProtoUDP
	default:
		return fmt.Errorf("unknown proto %q (want tcp or udp)", b)
	}
	return nil
}

// ParseDirection parses "receive", "transmit" or "both" (also "rx", "tx").
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(s) {
	case "receive", "rx", "download", "":
		return Receive, nil
	case "transmit", "tx", "send", "upload":
		return Transmit, nil
	case "both", "bidir":
		return Both, nil
	}
	return 0, fmt.Errorf("unknown direction %q (want receive, transmit or both)", s)
}

// Defaults for ClientConfig fields left at zero.
const (
	DefaultPort      = 2000
	DefaultTCPTxSize = 32768
	DefaultUDPTxSize = 1500
	DefaultInterval  = time.Second
)

// ClientConfig describes one test.
type ClientConfig struct {
	// Address is "host" or "host:port" of the server (port 2000 by default).
	Address string
	// UDP selects a UDP test; TCP otherwise.
	UDP bool
	// Direction is the client's view: Receive, Transmit or Both.
	Direction Direction
	// Connections is the TCP connection (or UDP stream) count, 1..255.
	Connections int
	// LocalTxSpeed caps what this client sends, in bit/s (0 = unlimited).
	LocalTxSpeed uint64
	// RemoteTxSpeed asks the server to cap what it sends, in bit/s.
	RemoteTxSpeed uint64
	// Duration of the test; 0 runs until ctx ends.
	Duration time.Duration
	// Random asks for random payload instead of zeros.
	Random bool
	// User and Password authenticate when the server asks.
	User, Password string
	// UDPTxSize is the IP packet size the server sends in UDP tests
	// (remote-udp-tx-size, on the wire); 28..64000, default 1500.
	UDPTxSize int
	// LocalUDPTxSize is the IP packet size this client sends; default
	// UDPTxSize.
	LocalUDPTxSize int
	// Interval between OnInterval reports; default 1 s.
	Interval time.Duration
	// HandshakeTimeout bounds connecting and each handshake step.
	HandshakeTimeout time.Duration
	// IdleTimeout ends the test with ErrStalled when, for so long, the
	// server sent no status message (UDP) or no byte moved in a direction
	// that should carry data (TCP); default 15 s.
	IdleTimeout time.Duration
	// MaxStatusRate ends the test with ErrProtocol when a server sends
	// more than this many status messages' worth of bytes in a second
	// where it should send only status messages (one a second); default
	// 64.
	MaxStatusRate int
	// SocketBuffer sets SO_SNDBUF/SO_RCVBUF; 0 keeps kernel autotuning.
	SocketBuffer int
	// LocalAddress, when set, is the source IP address of the test's
	// connections (like iperf3 -B).
	LocalAddress string
	// OnInterval, when set, gets one report per interval from the test
	// goroutine; it must not block for long.
	OnInterval func(IntervalStats)
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger

	// udpHooks, set by this package's tests only, steer and observe the
	// client's UDP engine.
	udpHooks *udpTestHooks
}

func (c *ClientConfig) setDefaults() {
	if c.Connections <= 0 {
		c.Connections = 1
	}
	if c.UDPTxSize <= 0 {
		c.UDPTxSize = DefaultUDPTxSize
	}
	if c.LocalUDPTxSize <= 0 {
		c.LocalUDPTxSize = c.UDPTxSize
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultUDPIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *ClientConfig) validate() error {
	if c.Address == "" {
		return fmt.Errorf("btest client: no server address")
	}
	if c.Connections < 1 || c.Connections > 255 {
		return fmt.Errorf("btest client: connection count %d out of range 1-255", c.Connections)
	}
	if c.Direction > Both {
		return fmt.Errorf("btest client: unknown direction %d", c.Direction)
	}
	for _, s := range []int{c.UDPTxSize, c.LocalUDPTxSize} {
		if s < 28 || s > 64000 {
			return fmt.Errorf("btest client: udp tx size %d out of range 28-64000", s)
		}
	}
	if c.LocalAddress != "" {
		if _, err := netip.ParseAddr(c.LocalAddress); err != nil {
			return fmt.Errorf("btest client: local address: %w", err)
		}
	}
	if c.Duration < 0 {
		return fmt.Errorf("btest client: negative duration")
	}
	return nil
}
