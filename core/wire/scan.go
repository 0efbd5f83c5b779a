package wire

import (
	"bytes"
	"encoding/binary"
)

// maxSeqJump is how far ahead of the last accepted status sequence number a
// candidate may be. Frames split across reads are missed, so gaps happen; a
// random 4-byte value lands in this window with probability ~2^-26.
const maxSeqJump = 64

// StatusScanner finds status messages interleaved, without any framing, in a
// TCP data stream (a server's stream in a `both` test, docs/protocol.md, §10.3).
//
// It locates candidates with bytes.IndexByte (vectorised) instead of looking
// at every byte in Go, and accepts a candidate only when its reserved bytes
// are zero, its CPU value is plausible and its sequence number is a little
// ahead of the last accepted one (in either the RouterOS little-endian or
// the old big-endian layout). A frame split across two reads is stitched
// together from a small carry buffer. The zero value is ready to use.
type StatusScanner struct {
	// Framed says the stream carries nothing but status messages (the
	// server's side of a transmit test): every record that starts with
	// 0x07 is taken, whatever its sequence number, since only interleaved
	// streams need the sequence check to tell frames from payload.
	Framed bool

	lastSeq uint32
	carry   [StatusSize - 1]byte
	nCarry  int
}

// Scan looks for status messages in p, the next chunk of the stream, and
// calls found for each one. It never modifies p.
func (sc *StatusScanner) Scan(p []byte, found func(Status)) {
	if sc.nCarry > 0 {
		sc.scanCarry(p, found)
	}
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], StatusType)
		if j < 0 {
			return
		}
		i += j
		if len(p)-i < StatusSize {
			sc.nCarry = copy(sc.carry[:], p[i:])
			return
		}
		if st, ok := sc.accept(p[i : i+StatusSize]); ok {
			found(st)
			i += StatusSize
			continue
		}
		i++
	}
}

// scanCarry completes a candidate that started in the previous chunk.
func (sc *StatusScanner) scanCarry(p []byte, found func(Status)) {
	var win [StatusSize]byte
	n := copy(win[:], sc.carry[:sc.nCarry])
	sc.nCarry = 0
	need := StatusSize - n
	if len(p) < need {
		return // a tiny read; status is advisory, drop it
	}
	copy(win[n:], p[:need])
	// The carried tail may hold a later 0x07 too; only the first candidate
	// is tried, which is enough because real frames start at byte 0 of
	// their window.
	if st, ok := sc.accept(win[:]); ok {
		found(st)
	}
}

func (sc *StatusScanner) accept(b []byte) (Status, bool) {
	if b[0] != StatusType {
		return Status{}, false
	}
	if sc.Framed {
		sc.lastSeq = binary.LittleEndian.Uint32(b[4:])
		return Status{CPU: min(b[1]&0x7f, 100), Seq: sc.lastSeq, Bytes: binary.LittleEndian.Uint32(b[8:])}, true
	}
	if b[2] == 0 && b[3] == 0 && b[1]&0x7f <= 100 {
		if seq := binary.LittleEndian.Uint32(b[4:]); sc.plausible(seq) {
			sc.lastSeq = seq
			return Status{CPU: min(b[1]&0x7f, 100), Seq: seq, Bytes: binary.LittleEndian.Uint32(b[8:])}, true
		}
	}
	// Old layout: sequence big-endian in bytes 1-4, no CPU value.
	if seq := binary.BigEndian.Uint32(b[1:]); sc.plausible(seq) && b[5] == 0 && b[6] == 0 && b[7] == 0 {
		sc.lastSeq = seq
		return Status{Seq: seq, Bytes: binary.LittleEndian.Uint32(b[8:])}, true
	}
	return Status{}, false
}

func (sc *StatusScanner) plausible(seq uint32) bool {
	d := seq - sc.lastSeq
	return d >= 1 && d <= maxSeqJump
}
