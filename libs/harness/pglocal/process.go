package pglocal

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

// killWait bounds the wait for processes to go after SIGKILL.
const killWait = 30 * time.Second

// proc is the running postmaster.
type proc struct {
	pid      int
	done     chan struct{} // closed once the process has exited and been reaped
	err      error         // cmd.Wait's result; read only after done is closed
	logPath  string
	logStart int64 // size of the log before this process wrote to it
}

// command makes the exec.Cmd of a PostgreSQL program run by o in dir, with
// its output appended to log, in its own process group, and without the
// caller's PG* environment (libpq's variables are not the server's).
func command(o owner, path string, args []string, dir string, log *os.File) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = o.cred
	return cmd
}

// openLog opens path for appending (owned by o) and notes the command in it;
// from is its size before.
func openLog(o owner, path, what string) (f *os.File, from int64, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open log: %w", err)
	}
	if err := o.chown(path); err != nil {
		f.Close()
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat log: %w", err)
	}
	fmt.Fprintf(f, "=== pglocal %s: %s\n", time.Now().Format(time.RFC3339), what)
	return f, st.Size(), nil
}

// run runs a program to its end; a failure carries the tail of its log.
func run(ctx context.Context, o owner, path string, args []string, dir, logPath string) error {
	f, from, err := openLog(o, logPath, path+" "+strings.Join(args, " "))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := command(o, path, args, dir, f)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // gone already is fine
		err = fmt.Errorf("%w (killed: %v)", ctx.Err(), <-done)
	}
	if err != nil {
		return procs.WithLogTail(fmt.Errorf("%s: %w", path, err), logPath, procs.LogTail(logPath, from, 40))
	}
	return nil
}

// startProc starts a long-running program (postgres).
func startProc(o owner, path string, args []string, dir, logPath string) (*proc, error) {
	f, from, err := openLog(o, logPath, path+" "+strings.Join(args, " "))
	if err != nil {
		return nil, err
	}
	// The child gets its own descriptor; ours is not needed after Start.
	defer f.Close()
	cmd := command(o, path, args, dir, f)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{}), logPath: logPath, logStart: from}
	go func() {
		p.err = cmd.Wait()
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

// signal sends sig to the process; one that is gone is no error.
func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to postgres %d: %w", sig, p.pid, err)
	}
	return nil
}

// kill crashes the server: it freezes the postmaster (so that it starts no
// more children), SIGKILLs it and every process it started (each backend is
// its own process group), and waits until all are gone, so that their
// shared memory is released for a restart.
func (p *proc) kill() error {
	if p.exited() {
		return nil
	}
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	children := childrenOf(p.pid)
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL) // one that is gone already is fine
	}
	deadline := time.NewTimer(killWait)
	defer deadline.Stop()
	select {
	case <-p.done:
	case <-deadline.C:
		return fmt.Errorf("postgres %d did not exit %v after SIGKILL", p.pid, killWait)
	}
	return waitGone(children, killWait)
}

// stop shuts the server down fast (SIGINT: roll back open transactions,
// close sessions, checkpoint) and waits for its exit; when ctx is done
// first it kills it and says so.
func (p *proc) stop(ctx context.Context) error {
	if err := p.signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	if err := p.kill(); err != nil {
		return err
	}
	return fmt.Errorf("postgres %d did not shut down in time (%w); killed it", p.pid, ctx.Err())
}

// tail returns the last lines the process wrote to its log.
func (p *proc) tail() string { return procs.LogTail(p.logPath, p.logStart, 40) }
