package core

import (
	"net"
	"sync"
	"sync/atomic"
)

// Receive buffers are pooled: sessions come and go, and a public server
// should not allocate (and later collect) megabytes per test. Every
// connection starts with a small buffer; one that fills it takes a large
// one while the server's budget of large buffers lasts (see
// ServerConfig.ReadBufferMemory), so memory stays bounded by
// sessions x connections x smallReadBuf plus the budget.
const (
	smallReadBuf = 32 << 10
	tinyReadBuf  = 4 << 10 // control connections of UDP tests: status messages only
)

var (
	tinyBufs  = sync.Pool{New: func() any { b := make([]byte, tinyReadBuf); return &b }}
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallReadBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, payloadSize); return &b }}
)

// bufBudget caps how many large receive buffers are out at once.
type bufBudget struct{ left atomic.Int64 }

// newBufBudget returns a budget of bytes worth of large buffers.
func newBufBudget(bytes int64) *bufBudget {
	b := new(bufBudget)
	b.left.Store(bytes / payloadSize)
	return b
}

func (b *bufBudget) take() bool {
	if b == nil {
		return true
	}
	if b.left.Add(-1) < 0 {
		b.left.Add(1)
		return false
	}
	return true
}

func (b *bufBudget) give() {
	if b != nil {
		b.left.Add(1)
	}
}

// readBuf says which buffers a read loop uses.
type readBuf struct {
	pool   *sync.Pool // the buffer a connection starts with
	grow   bool       // one that fills it may move to a large buffer
	budget *bufBudget // bounds the large buffers out at once; nil: no bound
}

// ctrlReadBuf is for control connections that carry only status messages.
var ctrlReadBuf = readBuf{pool: &tinyBufs}

// readLoop counts what arrives on c until it fails; scan, when set, sees
// every chunk (status messages) and ends the loop with its error. The
// buffer starts small and grows on the first full read when rb allows,
// so slow tests stay small in memory and fast ones read in large blocks.
func readLoop(c net.Conn, n *paddedCounter, scan func([]byte) error, rb readBuf) error {
	return readChunks(c, nil, n, scan, nil, rb)
}

// readData is readLoop for TCP data connections, whose payload nobody
// reads: bytes that scan is not to see (scan nil, or due reporting false)
// are taken off the socket without a copy where the system can (see
// tcpDropper). A large buffer then mostly sets how much one call takes.
func readData(c net.Conn, n *paddedCounter, scan func([]byte) error, due func() bool, rb readBuf) error {
	return readChunks(c, newTCPDropper(c), n, scan, due, rb)
}

// readChunks is the loop of readLoop and readData; dropper nil copies
// every byte.
func readChunks(c net.Conn, dropper *tcpDropper, n *paddedCounter, scan func([]byte) error, due func() bool, rb readBuf) error {
	pool, large := rb.pool, false
	bp := pool.Get().(*[]byte)
	defer func() {
		pool.Put(bp)
		if large {
			rb.budget.give()
		}
	}()
	buf := *bp
	for {
		var k int
		var err error
		look := scan != nil && (due == nil || due())
		if dropper != nil && !look {
			k, err = dropper.drop(buf)
		} else {
			k, err = c.Read(buf)
		}
		if k > 0 {
			n.Add(uint64(k))
			if look {
				if err := scan(buf[:k]); err != nil {
					return err
				}
			}
			if k == len(buf) && rb.grow && !large && rb.budget.take() {
				pool.Put(bp)
				pool, large = &largeBufs, true
				bp = pool.Get().(*[]byte)
				buf = *bp
			}
		}
		if err != nil {
			return err
		}
	}
}
