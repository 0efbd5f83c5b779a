package dashboard

import "sync"

// Bounds of the event streams.
const (
	// maxSubscribers caps concurrent api/events readers.
	maxSubscribers = 64
	// subscriberBuffer is how many messages may wait for one reader; a
	// reader that falls this far behind is dropped.
	subscriberBuffer = 8
)

// hub hands every message to every event stream without ever waiting for
// one: a stream whose buffer is full is dropped (its channel closed).
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	dropped uint64
}

type subscriber struct {
	ch chan []byte
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

// subscribe adds a stream, or returns nil when there are too many.
func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxSubscribers {
		return nil
	}
	sub := &subscriber{ch: make(chan []byte, subscriberBuffer)}
	h.subs[sub] = struct{}{}
	return sub
}

// unsubscribe removes a stream that ended by itself.
func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// publish queues msg for every stream; msg must not change afterwards.
func (h *hub) publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- msg:
		default:
			delete(h.subs, sub)
			close(sub.ch)
			h.dropped++
		}
	}
}

// closeAll ends every stream.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// counts returns the streams open now and those dropped so far.
func (h *hub) counts() (open int, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.dropped
}
