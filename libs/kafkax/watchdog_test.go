package kafkax

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWatchedReturnsTheCallsOwnResult(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	want := errors.New("refused")
	if err := watched(ctx, func(context.Context) error { return want }); !errors.Is(err, want) {
		t.Fatalf("watched = %v, want %v", err, want)
	}
}

func TestWatchedLeavesAHungCallBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	// A call that ignores its deadline, as librdkafka's commit has been
	// seen to.
	err := watched(ctx, func(context.Context) error { <-release; return nil })
	if !errors.Is(err, ErrCallHung) {
		t.Fatalf("watched = %v, want ErrCallHung", err)
	}
	if took := time.Since(start); took < hungGrace || took > hungGrace+5*time.Second {
		t.Fatalf("gave up after %v, want about %v past the deadline", took, hungGrace)
	}
}

func TestWatchedWithoutADeadlineWaits(t *testing.T) {
	calls := 0
	if err := watched(context.Background(), func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("watched = %v after %d calls", err, calls)
	}
}
