package core

import (
	"math/rand/v2"
	"sync"

	"github.com/btest-go/btest/core/wire"
)

// payloadSize is the size of the shared payload buffers and of one TCP
// write when unpaced: large writes keep syscalls per byte low.
const payloadSize = 1 << 20

// zeroPayload is shared read-only by every sender of zero data.
var zeroPayload = make([]byte, payloadSize)

// randomPayload is shared read-only by every sender of random data. It is
// made once: incompressible for links that compress, and free of the status
// type byte 0x07 so that a receiver scanning a `both` stream for status
// messages never stops on payload bytes.
var randomPayload = sync.OnceValue(func() []byte {
	b := make([]byte, payloadSize)
	r := rand.New(rand.NewChaCha8([32]byte{'b', 't', 'e', 's', 't'}))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			x := byte(v >> (8 * j))
			if x == wire.StatusType {
				x = 0xf7
			}
			b[i+j] = x
		}
	}
	return b
})

func payloadFor(random bool) []byte {
	if random {
		return randomPayload()
	}
	return zeroPayload
}
