package telegrafinput

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Logger writes human messages for Telegraf's inputs.execd, which reads
// the program's stderr line by line and logs "E! ", "W! ", "I! " and "D! "
// lines at error, warning, info and debug level. Each message is one line
// written with one Write, so concurrent tests never interleave them.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogger returns a Logger writing to w (the program's stderr).
func NewLogger(w io.Writer) *Logger { return &Logger{w: w} }

// Errorf logs at error level.
func (l *Logger) Errorf(format string, a ...any) { l.printf("E! ", format, a...) }

// Warnf logs at warning level.
func (l *Logger) Warnf(format string, a ...any) { l.printf("W! ", format, a...) }

// Infof logs at info level.
func (l *Logger) Infof(format string, a ...any) { l.printf("I! ", format, a...) }

// Debugf logs at debug level; Telegraf shows it only with --debug.
func (l *Logger) Debugf(format string, a ...any) { l.printf("D! ", format, a...) }

func (l *Logger) printf(prefix, format string, a ...any) {
	l.line(prefix, fmt.Sprintf(format, a...))
}

// line writes prefix and msg as one line: line breaks inside msg would
// turn its tail into a line without a prefix, which execd logs as an error.
func (l *Logger) line(prefix, msg string) {
	msg = strings.TrimRight(msg, "\r\n")
	msg = strings.NewReplacer("\r\n", " | ", "\n", " | ", "\r", " | ").Replace(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, prefix+msg+"\n")
}

// Slog returns a slog.Logger whose records become "D! " lines, for the
// core client's debug logs.
func (l *Logger) Slog() *slog.Logger {
	return slog.New(slog.NewTextHandler(debugWriter{l}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{} // Telegraf stamps and levels the line itself
			}
			return a
		},
	}))
}

// debugWriter turns each record the text handler writes into a D! line.
type debugWriter struct{ l *Logger }

func (d debugWriter) Write(b []byte) (int, error) {
	d.l.line("D! ", string(bytes.TrimSpace(b)))
	return len(b), nil
}
