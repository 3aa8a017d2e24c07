package pglocal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysProcAttr puts the server in its own process group, so that it does not
// get the terminal's Ctrl-C, and kills it when the Go process that started
// it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat") // the pattern is valid
	var out []int
	for _, path := range stats {
		if ppid, _, ok := readStat(path); ok && ppid == pid {
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// readStat reads the parent and state of a process from /proc/<pid>/stat.
func readStat(path string) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// waitGone waits until none of pids is running (gone, or a zombie that no
// longer holds memory).
func waitGone(pids []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for {
			_, state, ok := readStat(fmt.Sprintf("/proc/%d/stat", pid))
			if !ok || state == 'Z' || state == 'X' {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("postgres child %d still runs %v after SIGKILL", pid, limit)
			}
			time.Sleep(5 * time.Millisecond) // polling the kernel's view: there is no event for a non-child's exit
		}
	}
	return nil
}
