package kafkalocal

import "syscall"

// sysProcAttr puts a node in its own process group, so that it is signalled
// as a group and does not get the terminal's Ctrl-C, and kills it when the Go
// process that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
