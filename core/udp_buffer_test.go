package core

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSmallUDPBufferWarnsOnce checks the line an operator gets when the
// kernel grants UDP sockets less buffer than asked (a service without
// CAP_NET_ADMIN, rmem_max at its default): once, with both sizes, and
// naming the sysctls to raise.
func TestSmallUDPBufferWarnsOnce(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	var w bufferWarning
	w.check(log, udpSocketBuffer, udpSocketBuffer)
	if out.Len() != 0 {
		t.Fatalf("a full grant logged %q", out.String())
	}
	w.check(log, udpSocketBuffer, 212992)
	w.check(log, udpSocketBuffer, 212992)
	line := out.String()
	if n := strings.Count(line, "\n"); n != 1 {
		t.Fatalf("%d lines for two small grants, want 1:\n%s", n, line)
	}
	for _, want := range []string{"level=WARN", "net.core.rmem_max", "asked_bytes=16777216", "granted_bytes=212992"} {
		if !strings.Contains(line, want) {
			t.Errorf("warning %q lacks %q", line, want)
		}
	}
}
