//go:build unix && !linux

package pglocal

import (
	"syscall"
	"time"
)

// sysProcAttr puts the server in its own process group, so that it does
// not get the terminal's Ctrl-C.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// childrenOf is not known here: the backends notice their postmaster's
// death and exit on their own.
func childrenOf(int) []int { return nil }

func waitGone([]int, time.Duration) error { return nil }
