//go:build !linux

package udpio

import "syscall"

// Other systems send and receive one datagram per system call: x/net's
// batch calls do the same there, and GSO/GRO are Linux features.
const batchSupported = false

func gsoSupported() bool { return false }

func enableGRO(syscall.RawConn) bool { return false }

func forceBuffers(syscall.RawConn, int) bool { return false }

func isGSORefusal(error) bool { return false }

func gsoControl(int) []byte { return nil }

// ParseGRO returns 0: there is no UDP GRO on this system.
func ParseGRO([]byte) int { return 0 }

type mmsgReader struct{}

func (*mmsgReader) init(*Reader, int) {}

func (*mmsgReader) read(*Reader) (int, error) { return 0, syscall.ENOSYS }
