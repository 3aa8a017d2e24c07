package localstack

import (
	"fmt"
	"time"

	"github.com/cefiot/cefiot/libs/harness/procs"
)

// Restart back-off of a supervised process: the first restart comes after
// restartFirst, each quick failure doubles it up to restartMax, and a run
// of restartReset or longer starts over.
const (
	restartFirst = 500 * time.Millisecond
	restartMax   = 30 * time.Second
	restartReset = time.Minute
)

// startSupervised starts the process of name and supervises it.
func (s *Stack) startSupervised(name string, sp procs.Spec) error {
	p, err := procs.Start(sp)
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	s.logger.Info("started", "service", name, "pid", p.PID(), "log", sp.LogPath)
	go s.supervise(name, sp, p)
	return nil
}

// supervise waits for p (the process of name) to exit. An exit the stack
// did not ask for is reported on Exits, and the process is started again,
// until StopService, KillService or Stop take it out of the stack.
func (s *Stack) supervise(name string, sp procs.Spec, p *procs.Proc) {
	backoff := restartFirst
	for {
		started := time.Now()
		<-p.Done()
		if !s.current(name, p) {
			return // stopped or killed on purpose
		}
		select {
		case s.exits <- Exit{Service: name, Err: p.ExitError()}:
		default:
		}
		if time.Since(started) >= restartReset {
			backoff = restartFirst
		}
		s.logger.Warn("service exited; starting it again", "service", name, "in", backoff, "exit", p.Err(), "last", p.Tail(1), "log", sp.LogPath)
		select {
		case <-time.After(backoff):
		case <-s.done:
			return
		}
		backoff = min(2*backoff, restartMax)
		// Started under the lock, so that a StopService or StartService
		// meanwhile never races a second copy of the process.
		s.mu.Lock()
		if s.procs[name] != p {
			s.mu.Unlock()
			return // taken out of the stack meanwhile
		}
		next, err := procs.Start(sp)
		if err != nil {
			s.mu.Unlock()
			s.logger.Error("service could not be started again", "service", name, "err", err)
			return
		}
		s.procs[name] = next
		s.mu.Unlock()
		s.logger.Info("started again", "service", name, "pid", next.PID())
		p = next
	}
}

// current reports whether p is still the stack's process for name.
func (s *Stack) current(name string, p *procs.Proc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[name] == p
}
