// Package ratelimit is a byte-rate limiter whose rate can change while it is
// in use. A caller takes n bytes and waits until the bucket allows them; a
// record larger than the bucket is let through and paid for afterwards, so
// any record size works with any rate.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Limiter is a token bucket of bytes. The zero value is unlimited.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second; 0 = unlimited
	tokens float64
	last   time.Time
	now    func() time.Time
}

// New returns a limiter with rate bytes per second (0: unlimited).
func New(rate int64) *Limiter {
	l := &Limiter{now: time.Now}
	l.SetRate(rate)
	return l
}

// burst is how much the bucket holds: a tenth of a second of traffic.
func (l *Limiter) burst() float64 { return l.rate / 10 }

// SetRate changes the rate at once; waiting callers pick it up.
func (l *Limiter) SetRate(rate int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	l.rate = float64(max(rate, 0))
	l.tokens = min(l.tokens, l.burst())
}

// Rate returns the rate in bytes per second (0: unlimited).
func (l *Limiter) Rate() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.rate)
}

func (l *Limiter) refill() {
	now := l.clock()
	if !l.last.IsZero() && l.rate > 0 {
		l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, l.burst())
	}
	l.last = now
}

func (l *Limiter) clock() time.Time {
	if l.now == nil {
		return time.Now()
	}
	return l.now()
}

// Delay is how long a Wait would wait now (the bucket's debt at the
// current rate).
func (l *Limiter) Delay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	if l.rate == 0 || l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// Wait takes n bytes, waiting while the bucket is in debt. It returns
// ctx's error if ctx ends first.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		l.refill()
		if l.rate == 0 {
			l.mu.Unlock()
			return nil
		}
		if l.tokens >= 0 {
			l.tokens -= float64(n)
			l.mu.Unlock()
			return nil
		}
		// Wait for the debt to be paid, at most 100 ms so that a rate
		// change applies promptly.
		d := min(time.Duration(-l.tokens/l.rate*float64(time.Second)), 100*time.Millisecond)
		l.mu.Unlock()
		t := time.NewTimer(max(d, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
