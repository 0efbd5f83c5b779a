package dashboard

import (
	"time"

	"github.com/btest-go/btest/core"
)

// Snapshot is the whole state as api/state returns it.
type Snapshot struct {
	// Now is when the snapshot was taken.
	Now time.Time `json:"now"`
	// Server holds the server's facts: version, listeners, limits.
	Server Facts `json:"server"`
	// Active are the tests running now, oldest first, with their history.
	Active []Active `json:"active"`
	// Recent are the last finished tests and refusals, newest first.
	Recent []Recent `json:"recent"`
	// RecentSeq is the sequence number of the newest entry of Recent.
	RecentSeq uint64 `json:"recent_seq"`
	// Refusals counts refused connections by reason since the state began.
	Refusals map[core.RefusalReason]uint64 `json:"refusals"`
	// Totals count everything since the state began.
	Totals Totals `json:"totals"`
	// Throughput is the server-wide rate, one point a second, for the
	// last ten minutes.
	Throughput Series `json:"throughput"`
}

// Series is a time series in columns, as charts take it: T holds Unix
// seconds, Tx and Rx rates in bit/s from the server's view (tx = sent).
type Series struct {
	T  []int64   `json:"t"`
	Tx []float64 `json:"tx"`
	Rx []float64 `json:"rx"`
}

// Totals count tests and bytes since the state began (across reloads in
// Caddy).
type Totals struct {
	Sessions uint64 `json:"sessions"`
	Failed   uint64 `json:"failed"`
	Refused  uint64 `json:"refused"`
	TxBytes  uint64 `json:"tx_bytes"`
	RxBytes  uint64 `json:"rx_bytes"`
}

// Active is a running test. Rates and counts are from the server's view:
// tx is what the server sends.
type Active struct {
	// ID is unique within the state (a server generation and the server's
	// session ID).
	ID string `json:"id"`
	// Remote is the client's address and port.
	Remote string `json:"remote"`
	// User is the authenticated user name ("" without authentication).
	User string `json:"user"`
	// Proto is "tcp" or "udp"; Direction the client's view ("receive",
	// "transmit", "both").
	Proto       string `json:"proto"`
	Direction   string `json:"direction"`
	Connections int    `json:"connections"`
	// TxSize is the client's tx_size; Random reports random payload.
	TxSize int  `json:"tx_size"`
	Random bool `json:"random"`
	// TxLimitBps is the rate the server applies to what it sends (0 =
	// unlimited).
	TxLimitBps uint64 `json:"tx_limit_bps"`
	// UDPPort is the server's UDP data port (0 for TCP).
	UDPPort int       `json:"udp_port,omitempty"`
	Started time.Time `json:"started"`
	// ElapsedS is the test's age at its last report, in seconds.
	ElapsedS float64 `json:"elapsed_s"`
	// TxBps and RxBps are the last second's rates.
	TxBps float64 `json:"tx_bps"`
	RxBps float64 `json:"rx_bps"`
	// TxBytes and RxBytes are totals so far.
	TxBytes uint64 `json:"tx_bytes"`
	RxBytes uint64 `json:"rx_bytes"`
	// LostPackets counts UDP datagrams lost on the way to the server so
	// far; LossPct is the last second's loss in percent. Both are nil
	// (null) when the server receives no UDP data (TCP, or direction
	// receive): the loss on the way to the client is the client's to count.
	// In a both-ways test they are the client-to-server direction's.
	LostPackets *uint64  `json:"lost_packets"`
	LossPct     *float64 `json:"loss_pct"`
	// LocalCPU and RemoteCPU are CPU loads in percent (-1 unknown).
	LocalCPU  int `json:"local_cpu"`
	RemoteCPU int `json:"remote_cpu"`
	// History holds the test's per-second rates (api/state and start
	// events only).
	History *Series `json:"history,omitempty"`
}

// Recent is a finished test or a refused connection.
type Recent struct {
	// Seq orders entries; it grows by one for every entry.
	Seq uint64 `json:"seq"`
	// ID is the Active.ID the test had (empty for a refusal).
	ID string `json:"id,omitempty"`
	// Ended is when the test ended or, for a refusal, the last refusal.
	Ended  time.Time `json:"ended"`
	Remote string    `json:"remote"`
	User   string    `json:"user,omitempty"`
	// Proto, Direction and Connections describe the test (empty for a
	// refusal).
	Proto       string `json:"proto,omitempty"`
	Direction   string `json:"direction,omitempty"`
	Connections int    `json:"connections,omitempty"`
	// DurationS is how long data flowed, in seconds.
	DurationS float64 `json:"duration_s"`
	// TxBps and RxBps are the average rates, server view.
	TxBps   float64 `json:"tx_bps"`
	RxBps   float64 `json:"rx_bps"`
	TxBytes uint64  `json:"tx_bytes"`
	RxBytes uint64  `json:"rx_bytes"`
	// TxPackets and RxPackets count the UDP datagrams the server sent and
	// received; LostPackets those lost on the way to the server; LossPct
	// is their share in percent. The loss fields are nil (null) when the
	// server received no UDP data (TCP, or direction receive), as in
	// Active.
	TxPackets   uint64   `json:"tx_packets"`
	RxPackets   uint64   `json:"rx_packets"`
	LostPackets *uint64  `json:"lost_packets"`
	LossPct     *float64 `json:"loss_pct"`
	// Result is "ok", the class of error that ended the test (as in the
	// logs and metrics), or "refused".
	Result string `json:"result"`
	// Error is the error that ended the test, as logged.
	Error string `json:"error,omitempty"`
	// Reason is why a connection was refused; Count how many refusals in
	// a row from this address for this reason the entry stands for.
	Reason core.RefusalReason `json:"reason,omitempty"`
	Count  uint64             `json:"count,omitempty"`
}

// Tick is the message api/events sends every second.
type Tick struct {
	Now time.Time `json:"now"`
	// TxBps and RxBps are the server-wide rates of this second.
	TxBps float64 `json:"tx_bps"`
	RxBps float64 `json:"rx_bps"`
	// Active holds every running test's latest report, without history.
	Active []Active `json:"active"`
	// RecentSeq is the newest Recent entry's sequence number: a reader
	// that has less missed entries (refusals come only this way).
	RecentSeq uint64                        `json:"recent_seq"`
	Refusals  map[core.RefusalReason]uint64 `json:"refusals"`
	Totals    Totals                        `json:"totals"`
}
