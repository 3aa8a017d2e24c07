package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// flaky fails its first failures attempts, then delivers.
type flaky struct {
	mu        sync.Mutex
	failures  int
	permanent bool
	block     chan struct{} // when set, Send waits on it
	entered   chan struct{} // when set, Send says it began
	sent      []Event
}

func (f *flaky) Name() string { return "flaky" }

func (f *flaky) Send(ctx context.Context, ev Event) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.permanent {
		return Permanent(errors.New("400 Bad Request"))
	}
	if f.failures > 0 {
		f.failures--
		return errors.New("connection refused")
	}
	f.sent = append(f.sent, ev)
	return nil
}

type deadLetters struct {
	mu    sync.Mutex
	codes []string
}

func (d *deadLetters) record(_ context.Context, _ Event, _, code, _ string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.codes = append(d.codes, code)
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startDeliverer(t *testing.T, target Target, p Policy) (*deliverer, *deadLetters) {
	t.Helper()
	dl := &deadLetters{}
	d := newDeliverer(target, p, dl.record, quietLogger(), NewMetrics(prometheus.NewRegistry()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, dl
}

// offerAll offers n events and returns a channel closed when all are done.
func offerAll(d *deliverer, n int) <-chan struct{} {
	var wg sync.WaitGroup
	wg.Add(n)
	all := make(chan struct{})
	for i := range n {
		d.offer(context.Background(), job{ev: Event{EventID: string(rune('a' + i)), Type: TypeNew, StartTime: time.Now()}, enqueued: time.Now(), done: wg.Done})
	}
	go func() { wg.Wait(); close(all) }()
	return all
}

func waitDone(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("events not finished within 10 s")
	}
}

func TestDeliveryRetriesUntilDelivered(t *testing.T) {
	target := &flaky{failures: 3}
	d, dl := startDeliverer(t, target, Policy{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAge: time.Minute})
	waitDone(t, offerAll(d, 2))
	if len(target.sent) != 2 || target.sent[0].EventID != "a" || target.sent[1].EventID != "b" {
		t.Fatalf("sent %+v, want a then b", target.sent)
	}
	if len(dl.codes) != 0 {
		t.Fatalf("dead letters %v, want none", dl.codes)
	}
}

func TestDeliveryDeadLettersWhatCannotBeDelivered(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		d, dl := startDeliverer(t, &flaky{permanent: true}, Policy{MinBackoff: time.Millisecond})
		waitDone(t, offerAll(d, 1))
		if len(dl.codes) != 1 || dl.codes[0] != CodeRefused {
			t.Fatalf("dead letters %v, want [%s]", dl.codes, CodeRefused)
		}
	})
	t.Run("down for longer than max age", func(t *testing.T) {
		target := &flaky{failures: 1 << 30}
		d, dl := startDeliverer(t, target, Policy{MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxAge: 100 * time.Millisecond})
		waitDone(t, offerAll(d, 1))
		if len(dl.codes) != 1 || dl.codes[0] != CodeGaveUp || len(target.sent) != 0 {
			t.Fatalf("dead letters %v, sent %d; want [%s] and nothing sent", dl.codes, len(target.sent), CodeGaveUp)
		}
	})
	t.Run("queue full", func(t *testing.T) {
		target := &flaky{block: make(chan struct{}), entered: make(chan struct{}, 10)}
		d, dl := startDeliverer(t, target, Policy{Queue: 2, MaxAge: time.Minute})
		// One event is taken by the deliverer (blocked in Send), two wait,
		// the rest find the queue full and are dead-lettered at once.
		all := offerAll(d, 1)
		<-target.entered
		rest := offerAll(d, 5)
		dl.mu.Lock()
		codes := append([]string(nil), dl.codes...)
		dl.mu.Unlock()
		if len(codes) != 3 {
			t.Fatalf("dead letters %v, want 3 (queue of 2 full)", codes)
		}
		for _, c := range codes {
			if c != CodeQueueFull {
				t.Fatalf("dead letter code %q, want %q", c, CodeQueueFull)
			}
		}
		close(target.block)
		waitDone(t, all)
		waitDone(t, rest)
		if len(target.sent) != 3 {
			t.Fatalf("sent %d, want the 3 that were queued", len(target.sent))
		}
	})
}
