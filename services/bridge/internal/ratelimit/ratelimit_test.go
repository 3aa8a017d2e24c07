package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestUnlimitedDoesNotWait(t *testing.T) {
	l := New(0)
	start := time.Now()
	for range 1000 {
		if err := l.Wait(context.Background(), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if time.Since(start) > time.Second {
		t.Fatal("unlimited limiter waited")
	}
}

func TestRateIsKept(t *testing.T) {
	l := New(2 << 20) // 2 MiB/s
	start := time.Now()
	total := 0
	for total < 1<<20 { // 1 MiB in 100 KB records: about 0.5 s
		if err := l.Wait(context.Background(), 100_000); err != nil {
			t.Fatal(err)
		}
		total += 100_000
	}
	el := time.Since(start)
	if el < 350*time.Millisecond || el > 2*time.Second {
		t.Fatalf("1 MiB at 2 MiB/s took %v", el)
	}
}

func TestSetRateAppliesToWaiters(t *testing.T) {
	l := New(1000) // 1 KB/s: a 100 KB debt would take 100 s
	_ = l.Wait(context.Background(), 100_000)
	done := make(chan error, 1)
	go func() { done <- l.Wait(context.Background(), 10) }()
	time.Sleep(50 * time.Millisecond)
	l.SetRate(0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter did not see the rate change")
	}
	if l.Rate() != 0 {
		t.Fatal(l.Rate())
	}
}

func TestWaitHonoursContext(t *testing.T) {
	l := New(10)
	_ = l.Wait(context.Background(), 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, 10); err == nil {
		t.Fatal("no error after ctx ended")
	}
}

// TestDelayIsTheNextWait: Delay says how long the next Wait would wait,
// on a clock the test moves.
func TestDelayIsTheNextWait(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{now: func() time.Time { return now }}
	l.SetRate(1000) // 1 KB/s, a bucket of 100 bytes
	if d := l.Delay(); d != 0 {
		t.Fatalf("a bucket not in debt: Delay %v, want 0", d)
	}
	if err := l.Wait(context.Background(), 2000); err != nil { // the bucket starts empty: 2000 bytes in debt
		t.Fatal(err)
	}
	if d := l.Delay(); d != 2*time.Second {
		t.Fatalf("2000 bytes in debt at 1000 bytes/s: Delay %v, want 2s", d)
	}
	now = now.Add(1500 * time.Millisecond)
	if d := l.Delay(); d != 500*time.Millisecond {
		t.Fatalf("1.5 s later: Delay %v, want 500ms", d)
	}
	if d := New(0).Delay(); d != 0 {
		t.Fatalf("unlimited: Delay %v", d)
	}
}
