package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestRefreshStartsEachRunAgain: Refresh stops the running workload's run
// and starts it again at once, under the same epoch, with no overlap, no
// error shown in its status and no back-off; the count is a metric.
func TestRefreshStartsEachRunAgain(t *testing.T) {
	_, cli := etcdtest.Start(t)
	keys, _ := placement.NewKeys("edge")
	applyEnrich(t, cli, keys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader(ctx, t, cli, keys)

	var mu sync.Mutex
	var active, maxActive int
	var epochs []int64
	starts := make(chan struct{}, 10)
	run := func(ctx context.Context, a *cefiotv1.Assignment, _ *cefiotv1.Workload) error {
		mu.Lock()
		active++
		maxActive = max(maxActive, active)
		epochs = append(epochs, a.GetEpoch())
		mu.Unlock()
		starts <- struct{}{}
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // a run that takes a moment to stop
		mu.Lock()
		active--
		mu.Unlock()
		return nil
	}
	w, err := New(cli, Config{Keys: keys, ID: "a", Node: "a", Kinds: []string{"enrich"}, LeaseTTL: 2 * time.Second}, run, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(ctx) }()
	await := func(what string) {
		t.Helper()
		select {
		case <-starts:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	await("the first run")
	refreshed := time.Now()
	w.Refresh("new credentials")
	await("the run after the refresh")
	if took := time.Since(refreshed); took > time.Second {
		t.Errorf("the run started again %v after the refresh: a back-off?", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxActive != 1 {
		t.Errorf("%d runs at once: the old run must return before the new one starts", maxActive)
	}
	if len(epochs) != 2 || epochs[0] != epochs[1] {
		t.Errorf("epochs %v: a refresh keeps the assignment", epochs)
	}
	if n := testutil.ToFloat64(w.refreshes); n != 1 {
		t.Errorf("refreshes metric %v, want 1", n)
	}
	if _, states := w.Status(); len(states) != 1 || states[0].GetLastError() != "" {
		t.Errorf("status after a refresh: %v", states)
	}
}
