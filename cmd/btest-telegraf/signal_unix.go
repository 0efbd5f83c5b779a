//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

func notifyTriggers(c chan<- os.Signal) {
	signal.Notify(c, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
}
