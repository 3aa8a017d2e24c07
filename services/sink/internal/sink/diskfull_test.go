package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cefiot/cefiot/libs/logging"
)

// TestDiskFullIsSaidOncePerChange: a full disk sets the gauge and the
// health once, however many writes fail, and a write that fits clears both.
func TestDiskFullIsSaidOncePerChange(t *testing.T) {
	var health []bool
	s := &sink{metrics: newMetrics(prometheus.NewRegistry()), serving: func(ok bool) { health = append(health, ok) }}
	logger := logging.Discard()
	full := fmt.Errorf("store frame x: %w", &os.PathError{Op: "write", Path: "/store/x", Err: syscall.ENOSPC})
	for range 3 {
		if !isDiskFull(full) {
			t.Fatalf("isDiskFull(%v) = false", full)
		}
		s.diskFull(true, logger, full)
	}
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 1 {
		t.Fatalf("gauge %v while full", got)
	}
	s.diskFull(false, logger, nil)
	s.diskFull(false, logger, nil)
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 0 || len(health) != 2 || health[0] || !health[1] {
		t.Fatalf("after room again: gauge %v, health changes %v; want 0 and [false true]", got, health)
	}
	if isDiskFull(errors.New("file resize error: "+syscall.ENOSPC.Error())) == false {
		t.Error("bbolt's text-only resize error is not seen as a full disk")
	}
	if isDiskFull(errors.New("connection refused")) {
		t.Error("another error is seen as a full disk")
	}
}

// TestDiskFullRaceEndsWithTheLastChange: stores of several partitions
// hit a full disk and a frame that fits at once (as when the disk is just
// at its limit); then the disk has room and a frame fits. The gauge and
// the health end saying so, every time: a transition said out of order
// would leave them saying "full" for good.
func TestDiskFullRaceEndsWithTheLastChange(t *testing.T) {
	logger := slog.New(slowHandler{}) // a log write takes time, as on a busy disk
	full := &os.PathError{Op: "write", Path: "/store/x", Err: syscall.ENOSPC}
	for trial := range 100 {
		var mu sync.Mutex
		serving := true
		s := &sink{metrics: newMetrics(prometheus.NewRegistry()), serving: func(ok bool) { mu.Lock(); serving = ok; mu.Unlock() }}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					s.diskFull((g+i)%2 == 0, logger, full)
				}
			}()
		}
		wg.Wait()
		s.diskFull(false, logger, nil)
		mu.Lock()
		ok := serving
		mu.Unlock()
		if got := testutil.ToFloat64(s.metrics.diskFull); got != 0 || !ok {
			t.Fatalf("trial %d: after a frame fitted: gauge %v, serving %v; want 0 and true", trial, got, ok)
		}
	}
}

// slowHandler discards records, each after a short wait.
type slowHandler struct{}

func (slowHandler) Enabled(context.Context, slog.Level) bool { return true }
func (slowHandler) Handle(context.Context, slog.Record) error {
	time.Sleep(20 * time.Microsecond)
	return nil
}
func (h slowHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowHandler) WithGroup(string) slog.Handler      { return h }
