package core

import (
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/udpio"
)

// The UDP engine (docs/protocol.md, §11 and §12), shared by the server and the client:
// senders stamp sequence numbers into pre-filled GSO buffers and pace them
// with one lock-free pacer per test; receivers count bytes and loss per
// source address from batched (and GRO-coalesced) reads; the TCP control
// connection carries a status message each way every second, and each
// report the peer sends steers the sender's rate.

const (
	// maxUDPTxSize is the largest tx_size RouterOS accepts; larger values
	// in a command are cut to it.
	maxUDPTxSize = 64000
	// udpSocketBuffer is the default SO_RCVBUF/SO_SNDBUF of data sockets:
	// at 20 Gbit/s the kernel's 208 KiB default lasts 80 µs, so a receiver
	// that is not scheduled for a moment would drop datagrams.
	udpSocketBuffer = 16 << 20
	// udpBatchBytes is about how much one sender hands the kernel per
	// system call when unpaced: 8 GSO buffers of 64 KiB.
	udpBatchBytes = 512 << 10
	// udpTick is the pacing granularity: a paced sender sends about this
	// much time's worth of datagrams per wake-up.
	udpTick = time.Millisecond
	// udpBurst bounds catch-up after a late wake-up, in time at the
	// current rate. Longer would let a fast sender overrun the receiver's
	// socket buffer after a stall.
	udpBurst = 2 * time.Millisecond
	// udpSlack: an unlimited sender does not sleep for pacer waits
	// shorter than this; it runs that far ahead of its schedule at most.
	udpSlack = time.Millisecond
	// udpLimitBurst is the catch-up allowed under an explicit limit, where
	// the asked rate is the point: at most half the receiver's socket
	// buffer's worth (a 2 ms allowance lost 10-15 % of 1 Gbit/s to late
	// wake-ups on a loaded machine).
	udpLimitBurst = 50 * time.Millisecond
	// udpStartDelay is how long a server waits for the client's first
	// datagram (its NAT probe) before sending anyway: sending before the
	// client has bound its port only draws ICMP errors.
	udpStartDelay = 100 * time.Millisecond
	// udpServerDrain and udpClientDrain bound how long a receiver keeps
	// reading datagrams already on their way when the test ends; the
	// client waits longer because the server stops only when it sees the
	// control connection close.
	udpServerDrain = 30 * time.Millisecond
	udpClientDrain = 60 * time.Millisecond
	udpDrainMax    = 500 * time.Millisecond
	// udpMaxSources caps the per-source loss trackers of one receiver; a
	// client that sends from more ports still has its bytes counted.
	udpMaxSources = 1024
	// udpEarlyStatus: once this much arrived since the last status, the
	// next one goes at once instead of at the end of the second. The
	// status byte count is 32 bits, full at 34 Gbit/s; a sender that only
	// ever sees full counts cannot tell how much of its traffic is lost.
	// Early reports only happen above 17 Gbit/s, out of reach of the
	// other implementations' senders, and a sender that measures the gap
	// between reports (as ours does) reads them right.
	udpEarlyStatus = 1 << 31
)

// udpEarly lets the receivers ask for an early status message, and tell
// that the peer's sender takes early reports (ours is closed).
type udpEarly struct {
	since    atomic.Uint64 // bytes received since the last status
	kick     chan struct{}
	ours     chan struct{}
	oursOnce sync.Once
	// peerStarting: the peer's sender marks its datagrams as still in
	// its start-up (our sender's start-up steps less while it is, see
	// fcPeerStartGain).
	peerStarting atomic.Bool
}

// udpHeaderSize is the IP plus UDP header that btest counts into every
// datagram (docs/protocol.md, §11.3 and §11.5).
func udpHeaderSize(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 28
	}
	return 48
}

// udpPayloadSize turns a tx_size (the whole IP packet) into the UDP payload:
// at least the 4-byte sequence number, at most what tx_size 64000 gives.
func udpPayloadSize(txSize, hdr int) int {
	return max(min(txSize, maxUDPTxSize)-hdr, udpio.SeqSize)
}

// mulDiv returns a*b/c without overflow, saturating at the largest uint64.
func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return ^uint64(0)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}
