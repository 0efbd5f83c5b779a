package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/btest-go/btest/core"
)

// clientConfig turns the flags into a core.ClientConfig.
func clientConfig(o *options) (core.ClientConfig, error) {
	cfg := core.ClientConfig{
		Address:          o.client,
		UDP:              o.udp,
		Connections:      o.connections,
		Duration:         time.Duration(o.duration),
		Random:           o.random,
		User:             o.user,
		Password:         o.password,
		UDPTxSize:        o.udpSize,
		LocalUDPTxSize:   o.localUDPSize,
		Interval:         o.interval,
		HandshakeTimeout: o.handshakeTimeout,
		SocketBuffer:     o.socketBuffer,
	}
	if o.port != core.DefaultPort {
		cfg.Address = hostPort(o.client, o.port)
	}
	switch {
	case o.transmit && o.receive:
		cfg.Direction = core.Both
	case o.transmit:
		cfg.Direction = core.Transmit
	default:
		cfg.Direction = core.Receive
	}
	var err error
	if o.bandwidth != "" {
		if cfg.LocalTxSpeed, err = core.ParseBitRate(o.bandwidth); err != nil {
			return cfg, fmt.Errorf("-b: %w", err)
		}
		cfg.RemoteTxSpeed = cfg.LocalTxSpeed
	}
	if o.localTx != "" {
		if cfg.LocalTxSpeed, err = core.ParseBitRate(o.localTx); err != nil {
			return cfg, fmt.Errorf("--local-tx-speed: %w", err)
		}
	}
	if o.remoteTx != "" {
		if cfg.RemoteTxSpeed, err = core.ParseBitRate(o.remoteTx); err != nil {
			return cfg, fmt.Errorf("--remote-tx-speed: %w", err)
		}
	}
	// The command carries what the server may send as a 32-bit bit/s field
	// (docs/protocol.md, §4.3): a larger limit cannot be asked for.
	// What the client sends is paced here and has no such cap.
	if cfg.RemoteTxSpeed > core.MaxRemoteTxSpeed && cfg.Direction != core.Transmit {
		flag := "--remote-tx-speed"
		if o.remoteTx == "" {
			flag = "-b"
		}
		return cfg, fmt.Errorf("%s: the server cannot be asked for %s: the protocol's speed field caps it at %s (use 0 for unlimited)",
			flag, core.FormatBitRate(float64(cfg.RemoteTxSpeed)), core.FormatBitRate(core.MaxRemoteTxSpeed))
	}
	// Warnings (a peer's claims not believed, UDP buffers smaller than
	// asked) reach the user on stderr; -v adds the debug lines.
	cfg.Logger = newLogger(o, os.Stderr)
	return cfg, nil
}

// hostPort puts port on a host given with or without one.
func hostPort(host string, port int) string {
	if h, _, err := splitHostPort(host); err == nil {
		host = h
	}
	return joinHostPort(host, port)
}

// intervalJSON is one --json line per interval.
type intervalJSON struct {
	Type           string  `json:"type"`
	Elapsed        float64 `json:"elapsed_seconds"`
	TxBps          float64 `json:"tx_bps"`
	RxBps          float64 `json:"rx_bps"`
	TxAvg10Bps     float64 `json:"tx_avg10_bps"`
	RxAvg10Bps     float64 `json:"rx_avg10_bps"`
	TxAvgBps       float64 `json:"tx_avg_bps"`
	RxAvgBps       float64 `json:"rx_avg_bps"`
	TxBytes        uint64  `json:"tx_bytes"`
	RxBytes        uint64  `json:"rx_bytes"`
	LostPackets    uint64  `json:"lost_packets"`
	LostTotal      uint64  `json:"lost_total"`
	StartupLost    uint64  `json:"startup_lost_packets"`
	LocalCPU       int     `json:"local_cpu"`
	RemoteCPU      int     `json:"remote_cpu"`
	IntervalSecond float64 `json:"interval_seconds"`
}

// summaryJSON is the final --json line.
type summaryJSON struct {
	Type        string  `json:"type"`
	Server      string  `json:"server"`
	Proto       string  `json:"protocol"`
	Direction   string  `json:"direction"`
	Connections int     `json:"connections"`
	Duration    float64 `json:"duration_seconds"`
	TxBytes     uint64  `json:"tx_bytes"`
	RxBytes     uint64  `json:"rx_bytes"`
	TxBps       float64 `json:"tx_bps"`
	RxBps       float64 `json:"rx_bps"`
	LostPackets uint64  `json:"lost_packets"`
	StartupLost uint64  `json:"startup_lost_packets"`
	LocalCPU    int     `json:"local_cpu"`
	RemoteCPU   int     `json:"remote_cpu"`
	Result      string  `json:"result"`
	Error       string  `json:"error,omitempty"`
}

func runClient(ctx context.Context, o *options, cfg core.ClientConfig, stdout, stderr io.Writer) error {
	enc := json.NewEncoder(stdout)
	cfg.OnInterval = func(s core.IntervalStats) {
		if o.jsonOut {
			enc.Encode(intervalJSON{
				Type: "interval", Elapsed: s.Elapsed.Seconds(), IntervalSecond: s.Interval.Seconds(),
				TxBps: s.TxBps, RxBps: s.RxBps, TxAvg10Bps: s.TxAvg10Bps, RxAvg10Bps: s.RxAvg10Bps,
				TxAvgBps: s.TxAvgBps, RxAvgBps: s.RxAvgBps, TxBytes: s.TxBytes, RxBytes: s.RxBytes,
				LostPackets: s.LostPackets, LostTotal: s.LostTotal, StartupLost: s.StartupLostPackets,
				LocalCPU: s.LocalCPU, RemoteCPU: s.RemoteCPU,
			})
			return
		}
		fmt.Fprintln(stdout, formatInterval(cfg.Direction, cfg.UDP, o.interval, s))
	}
	if !o.jsonOut {
		fmt.Fprintf(stdout, "btest %s %s to %s, %d connection(s)\n", protoName(cfg.UDP), cfg.Direction, cfg.Address, cfg.Connections)
	}
	sum, err := core.RunClient(ctx, cfg)
	if sum == (core.Summary{}) {
		// No test ran: say what was asked, and "unknown" for the CPU
		// loads in the interval lines' way, not a measured 0.
		sum.Connections, sum.LocalCPU, sum.RemoteCPU = cfg.Connections, -1, -1
	}
	if o.jsonOut {
		out := summaryJSON{
			Type: "summary", Server: cfg.Address, Proto: protoName(cfg.UDP), Direction: cfg.Direction.String(),
			Connections: sum.Connections, Duration: sum.Duration.Seconds(),
			TxBytes: sum.TxBytes, RxBytes: sum.RxBytes, TxBps: sum.TxBps, RxBps: sum.RxBps,
			LostPackets: sum.LostPackets, StartupLost: sum.StartupLostPackets, LocalCPU: sum.LocalCPU, RemoteCPU: sum.RemoteCPU,
			Result: core.ResultString(err),
		}
		if err != nil {
			out.Error = err.Error()
		}
		enc.Encode(out)
	} else if sum.Duration > 0 {
		fmt.Fprintln(stdout, formatSummary(cfg.Direction, sum))
	}
	return err
}

// clientError words a failed test for its user: what to do about a
// rejected login or a refused test, rather than the handshake step that
// noticed it. detail is the full error when msg replaces it ("" when not),
// which -v prints too.
func clientError(o *options, err error) (msg, detail string) {
	switch {
	case errors.Is(err, core.ErrAuthFailed) && o.user == "":
		msg = "the server requires a user name and password: use -a USER and -p PASS (or $BTEST_PASSWORD)"
	case errors.Is(err, core.ErrAuthFailed):
		msg = fmt.Sprintf("authentication failed for user %q: check -a and -p", o.user)
	case errors.Is(err, core.ErrRefused):
		msg = "the server refused the test, for one of these reasons: this address is not allowed, too many clients are " +
			"connecting at once, the server is full, or the test asks for more than the server allows (try fewer -n)"
	default:
		return err.Error(), ""
	}
	return msg, err.Error()
}

func protoName(udp bool) string {
	if udp {
		return "udp"
	}
	return "tcp"
}

// formatInterval renders one live line, RouterOS style: current, 10 s
// average and total average for each direction that carries data. The
// elapsed time has the decimals that every, the report interval, needs.
func formatInterval(d core.Direction, udp bool, every time.Duration, s core.IntervalStats) string {
	dec := 3
	switch {
	case every%(100*time.Millisecond) == 0:
		dec = 1
	case every%(10*time.Millisecond) == 0:
		dec = 2
	}
	line := fmt.Sprintf("[%*.*fs]", 5+dec, dec, s.Elapsed.Seconds())
	if d != core.Receive {
		line += fmt.Sprintf("  tx %s (10s %s, avg %s)", core.FormatBitRate(s.TxBps), core.FormatBitRate(s.TxAvg10Bps), core.FormatBitRate(s.TxAvgBps))
	}
	if d != core.Transmit {
		line += fmt.Sprintf("  rx %s (10s %s, avg %s)", core.FormatBitRate(s.RxBps), core.FormatBitRate(s.RxAvg10Bps), core.FormatBitRate(s.RxAvgBps))
	}
	if udp && d != core.Transmit {
		line += lostString(s.LostPackets, s.StartupLostPackets)
	}
	line += "  cpu " + cpuString(s.LocalCPU) + "/" + cpuString(s.RemoteCPU)
	return line
}

func cpuString(c int) string {
	if c < 0 {
		return "-"
	}
	return fmt.Sprintf("%d%%", c)
}

func formatSummary(d core.Direction, s core.Summary) string {
	line := fmt.Sprintf("done: %s in %.1fs", s.Proto, s.Duration.Seconds())
	if d != core.Receive {
		line += fmt.Sprintf("  tx %s (%d bytes)", core.FormatBitRate(s.TxBps), s.TxBytes)
	}
	if d != core.Transmit {
		line += fmt.Sprintf("  rx %s (%d bytes)", core.FormatBitRate(s.RxBps), s.RxBytes)
	}
	if s.Proto == core.ProtoUDP && d != core.Transmit {
		line += lostString(s.LostPackets, s.StartupLostPackets)
	}
	return line
}

// lostString shows UDP loss, and how much of it the peer's sender caused
// while it was still finding the path's rate (only our own peers tell).
// Loss is counted where datagrams arrive, and status messages do not carry
// it: a test that only transmits shows none, since the client cannot know
// it (the server's log has it), and "lost 0" would claim a clean path.
func lostString(lost, startup uint64) string {
	if startup == 0 {
		return fmt.Sprintf("  lost %d", lost)
	}
	return fmt.Sprintf("  lost %d (%d in the start-up)", lost, startup)
}
