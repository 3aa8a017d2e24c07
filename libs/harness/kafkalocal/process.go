package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cefiot/cefiot/libs/harness/procs"
)

// killWait bounds the wait for a process to exit after SIGKILL.
const killWait = 30 * time.Second

// proc is one running JVM, the leader of its own process group.
type proc struct {
	pid      int
	done     chan struct{} // closed once the process has exited and been reaped
	err      error         // cmd.Wait's result; read only after done is closed
	logPath  string
	logStart int64 // size of the log before this process wrote to it
}

// startProc starts java with args in dir, appending its stdout and stderr to
// logPath. onExit runs, before done is closed, when the process has exited.
func startProc(java string, args []string, dir, logPath string, onExit func(error)) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	// The child gets its own descriptor; ours is not needed after Start.
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat log: %w", err)
	}
	fmt.Fprintf(f, "=== kafkalocal %s: %s %s\n", time.Now().Format(time.RFC3339), java, strings.Join(args, " "))

	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", java, err)
	}
	p := &proc{
		pid:      cmd.Process.Pid,
		done:     make(chan struct{}),
		logPath:  logPath,
		logStart: st.Size(),
	}
	go func() {
		err := cmd.Wait()
		p.err = err
		if onExit != nil {
			onExit(err)
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group; a group that is gone is no error.
func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, p.pid, err)
	}
	return nil
}

// kill sends SIGKILL to the group and waits for the process to exit.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("process %d did not exit %v after SIGKILL", p.pid, killWait)
	}
}

// stop sends SIGTERM and waits for the process to exit, sending SIGKILL when
// grace has passed or ctx is done first. killed reports whether SIGKILL was
// needed.
func (p *proc) stop(ctx context.Context, grace time.Duration) (killed bool, err error) {
	if p.exited() {
		return false, nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return false, err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return false, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return true, p.kill()
}

// tail returns the last lines the process wrote to its log.
func (p *proc) tail() string {
	return procs.LogTail(p.logPath, p.logStart, 40)
}
