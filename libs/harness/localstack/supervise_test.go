package localstack

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/procs"
)

func bareStack() *Stack {
	return &Stack{logger: slog.New(slog.DiscardHandler), procs: map[string]*procs.Proc{}, exits: make(chan Exit, 16), done: make(chan struct{})}
}

// A process that dies on its own is reported and started again; one that
// the stack kills or stops on purpose is neither.
func TestSupervisorRestartsWhatDiesAndNothingElse(t *testing.T) {
	s := bareStack()
	dir := t.TempDir()
	sp := procs.Spec{Name: "svc", Path: "/bin/sh", Args: []string{"-c", "sleep 30"}, LogPath: filepath.Join(dir, "svc.log")}
	if err := s.startSupervised("svc", sp); err != nil {
		t.Fatal(err)
	}
	first := s.PID("svc")
	s.mu.Lock()
	s.procs["svc"].Kill() // from outside, as kill -9 would
	s.mu.Unlock()
	select {
	case ex := <-s.exits:
		if ex.Service != "svc" || ex.Err == nil {
			t.Fatalf("exit %+v", ex)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the death was not reported")
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.PID("svc") == first || s.PID("svc") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not started again")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Killed on purpose (a node's power cut in a test): gone for good.
	s.KillService("svc")
	select {
	case ex := <-s.exits:
		t.Fatalf("a deliberate kill was reported as a death: %v", ex)
	case <-time.After(2 * restartFirst):
	}
	if pid := s.PID("svc"); pid != 0 {
		t.Fatalf("killed service came back as pid %d", pid)
	}

	// Stopped while waiting for its restart: not started again.
	if err := s.startSupervised("svc", procs.Spec{Name: "svc", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, LogPath: sp.LogPath}); err != nil {
		t.Fatal(err)
	}
	if ex := <-s.exits; ex.Err == nil {
		t.Fatal("exit 3 reported without an error")
	}
	s.StopService(context.Background(), "svc")
	time.Sleep(2 * restartFirst)
	if pid := s.PID("svc"); pid != 0 {
		t.Fatalf("stopped service came back as pid %d", pid)
	}
}
