package dashboard

// ring is a fixed-size buffer keeping the newest n values.
type ring[T any] struct {
	buf  []T
	next int // index the next push writes
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

// push adds v, overwriting the oldest value once the ring is full.
func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// len returns how many values the ring holds.
func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// last returns a pointer to the newest value, or nil when empty.
func (r *ring[T]) last() *T {
	if r.len() == 0 {
		return nil
	}
	return &r.buf[(r.next-1+len(r.buf))%len(r.buf)]
}

// each calls f with the values from oldest to newest.
func (r *ring[T]) each(f func(*T)) {
	if r.full {
		for i := r.next; i < len(r.buf); i++ {
			f(&r.buf[i])
		}
	}
	for i := 0; i < r.next; i++ {
		f(&r.buf[i])
	}
}
