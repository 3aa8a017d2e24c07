package procs

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStopAndKill(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Spec{Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}, LogPath: filepath.Join(dir, "log")})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "started")
	if killed := p.Stop(context.Background(), 5*time.Second); killed {
		t.Fatal("sleep should stop on SIGTERM")
	}
	if !strings.Contains(p.Tail(5), "started") {
		t.Fatalf("log tail %q", p.Tail(5))
	}
	// A process that ignores SIGTERM is killed after the grace period.
	p, err = Start(Spec{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, LogPath: filepath.Join(dir, "log2")})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "ready")
	if killed := p.Stop(context.Background(), 200*time.Millisecond); !killed {
		t.Fatal("want killed")
	}
	if err := p.ExitError(); !strings.Contains(err.Error(), "stubborn exited") {
		t.Fatalf("got %v", err)
	}
}

// waitLog polls the log file: a child's output has no event to wait on.
func waitLog(t *testing.T, p *Proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Tail(5), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", p.Name(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
