// Package leasebound gives a worker's blocking calls a deadline from the
// lease the worker holds.
//
// A runner's call that cannot be interrupted once started (librdkafka's
// transaction commit or abort honours its context's deadline, not its
// cancellation) must still have returned before the worker's lease could
// expire, or a fence would wait on the network and a stale owner could
// outlive its lease. The worker attaches a Clock to every runner's context;
// CallContext and CleanupContext derive per-call contexts from it.
package leasebound

import (
	"context"
	"time"
)

// Clock tells the latest moment a call under the lease may still be
// running.
type Clock interface {
	CallDeadline() time.Time
}

type clockKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c Clock) context.Context {
	return context.WithValue(ctx, clockKey{}, c)
}

// Deadline is the deadline CallContext would give a call now, and whether
// ctx carries a lease clock at all.
func Deadline(ctx context.Context, max time.Duration) (time.Time, bool) {
	d := time.Now().Add(max)
	c, ok := ctx.Value(clockKey{}).(Clock)
	if !ok {
		return d, false
	}
	if l := c.CallDeadline(); l.Before(d) {
		d = l
	}
	return d, true
}

// CallContext returns a context for one blocking call: it ends with ctx,
// after max at the latest, and early enough that the call has returned
// before the lease could expire. Without a lease clock in ctx only max
// applies.
func CallContext(ctx context.Context, max time.Duration) (context.Context, context.CancelFunc) {
	d, _ := Deadline(ctx, max)
	return context.WithDeadline(ctx, d)
}

// CleanupContext is CallContext for the cleanup after ctx has ended (an
// abort): it is not cancelled with ctx, only bounded by max and the lease.
func CleanupContext(ctx context.Context, max time.Duration) (context.Context, context.CancelFunc) {
	d, _ := Deadline(ctx, max)
	return context.WithDeadline(context.WithoutCancel(ctx), d)
}

// GraceContext returns a context for a piece of work that should finish
// even when ctx ends meanwhile (a batch stored but not yet committed, which
// the next run would read again): it lives on after ctx ends, for max at
// most and only while calls under the lease may still run (both taken when
// ctx ends). While ctx lives it has no deadline of its own.
func GraceContext(ctx context.Context, max time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		d, _ := Deadline(ctx, max)
		if time.Until(d) <= 0 {
			cancel()
			return
		}
		timer := time.AfterFunc(time.Until(d), cancel)
		context.AfterFunc(gctx, func() { timer.Stop() })
	})
	return gctx, func() {
		stop()
		cancel()
	}
}
