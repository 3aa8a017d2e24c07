package sink

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

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
