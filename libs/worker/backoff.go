package worker

import (
	"context"
	"time"
)

// healthyAfter is how long a restarted workload must run without failing
// before its last error is cleared from its status.
const healthyAfter = 10 * time.Second

type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 200 * time.Millisecond} }

func (b *backoff) reset() { b.d = 200 * time.Millisecond }

func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(2*b.d, 5*time.Second)
}
