package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/forward"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"
)

func TestPauseWaitsForEveryRunningSession(t *testing.T) {
	st := newState(newMetrics(prometheus.NewRegistry()), ratelimit.New(0), nil)
	quick := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return st.awaitHalted(ctx)
	}
	if !quick() {
		t.Fatal("no session runs, yet the pause is not confirmed")
	}
	parts := map[checkpoint.Partition]forward.PartitionInfo{{Topic: "frames.enriched", Partition: 0}: {CloudTopic: "edge-a.frames.enriched"}}
	st.Assigned("bridge-1", parts)
	st.Assigned("bridge-2", parts)
	if quick() {
		t.Fatal("confirmed before any session halted")
	}
	st.Halted("bridge-1", true)
	if quick() {
		t.Fatal("confirmed with bridge-2 still forwarding")
	}

	done := make(chan bool)
	go func() { done <- st.awaitHalted(context.Background()) }()
	st.Halted("bridge-2", true)
	if !<-done {
		t.Fatal("not confirmed once both sessions halted")
	}

	st.Halted("bridge-2", false) // resumed
	if quick() {
		t.Fatal("confirmed with bridge-2 reading again")
	}
	st.drop("bridge-2") // the workload moved away
	if !quick() {
		t.Fatal("a stopped workload still holds the pause back")
	}
}
