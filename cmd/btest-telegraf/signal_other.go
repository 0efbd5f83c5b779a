//go:build !unix

package main

import "os"

// notifyTriggers does nothing where SIGHUP, SIGUSR1 and SIGUSR2 do not
// exist; stdin lines still trigger rounds.
func notifyTriggers(chan<- os.Signal) {}
