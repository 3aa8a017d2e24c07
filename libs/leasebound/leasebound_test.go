package leasebound

import (
	"context"
	"testing"
	"time"
)

type fixedClock time.Time

func (c fixedClock) CallDeadline() time.Time { return time.Time(c) }

func TestCallContextTakesTheEarlierOfMaxAndLease(t *testing.T) {
	lease := time.Now().Add(300 * time.Millisecond)
	ctx := With(context.Background(), fixedClock(lease))

	cctx, cancel := CallContext(ctx, 10*time.Second)
	defer cancel()
	if d, ok := cctx.Deadline(); !ok || !d.Equal(lease) {
		t.Fatalf("deadline %v, want the lease's %v", d, lease)
	}
	short, cancel2 := CallContext(ctx, 50*time.Millisecond)
	defer cancel2()
	if d, _ := short.Deadline(); !d.Before(lease) {
		t.Fatalf("deadline %v: max 50ms should come before the lease's %v", d, lease)
	}
	if _, ok := Deadline(context.Background(), time.Second); ok {
		t.Fatal("a context without a clock reported one")
	}
}

func TestCleanupContextOutlivesCancellationButNotTheLease(t *testing.T) {
	lease := time.Now().Add(time.Second)
	ctx, cancel := context.WithCancel(With(context.Background(), fixedClock(lease)))
	cancel()
	cctx, cancel2 := CleanupContext(ctx, 10*time.Second)
	defer cancel2()
	if cctx.Err() != nil {
		t.Fatalf("cleanup context ended with its parent: %v", cctx.Err())
	}
	if d, _ := cctx.Deadline(); !d.Equal(lease) {
		t.Fatalf("deadline %v, want the lease's %v", d, lease)
	}
	// A call context of an ended parent ends at once.
	call, cancel3 := CallContext(ctx, 10*time.Second)
	defer cancel3()
	if call.Err() == nil {
		t.Fatal("call context of a cancelled parent is still live")
	}
}

func TestGraceContextOutlivesItsParentForAWhile(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	gctx, done := GraceContext(parent, 100*time.Millisecond)
	defer done()
	if _, ok := gctx.Deadline(); ok {
		t.Fatal("a grace context has a deadline while its parent lives")
	}
	cancelParent()
	if gctx.Err() != nil {
		t.Fatalf("grace context ended with its parent: %v", gctx.Err())
	}
	select {
	case <-gctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("grace context outlived its 100 ms after the parent ended")
	}

	// The lease shortens the grace: with no time left under it, the
	// context ends with its parent.
	leased, cancelLeased := context.WithCancel(With(context.Background(), fixedClock(time.Now().Add(-time.Second))))
	gctx2, done2 := GraceContext(leased, time.Minute)
	defer done2()
	cancelLeased()
	select {
	case <-gctx2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("grace context outlived the lease")
	}

	// Done ends it at once.
	gctx3, done3 := GraceContext(context.Background(), time.Minute)
	done3()
	if gctx3.Err() == nil {
		t.Fatal("grace context lives on after its cancel func")
	}
}
