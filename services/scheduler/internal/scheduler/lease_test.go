package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/placement"
	"github.com/cefiot/cefiot/libs/worker"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// ListWorkers reports each worker's remaining lease time as etcd tells it.
func TestListWorkersLeaseRemaining(t *testing.T) {
	emb, cli := etcdtest.Start(t)
	keys, _ := placement.NewKeys("edge")
	s, err := newScheduler(cli, Config{Site: "edge", ReplicaID: "s1", SessionTTL: time.Second, Resync: time.Second}, nil, prometheus.NewRegistry(), logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	a := &api{cli: cli, keys: keys, sched: s}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	registered := cli.Watch(ctx, keys.Workers(), clientv3.WithPrefix())
	ttls := map[string]time.Duration{"w-short": 3 * time.Second, "w-long": 30 * time.Second}
	for id, ttl := range ttls {
		w, err := worker.New(etcdtest.NewClient(t, emb), worker.Config{
			Keys: keys, ID: id, Node: "n-" + id, Kinds: []string{"enrich"}, LeaseTTL: ttl,
		}, func(ctx context.Context, _ *cefiotv1.Assignment, _ *cefiotv1.Workload) error {
			<-ctx.Done()
			return nil
		}, logging.Discard())
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = w.Run(ctx) }()
	}
	for seen := map[string]bool{}; len(seen) < len(ttls); {
		resp, ok := <-registered
		if !ok || resp.Err() != nil {
			t.Fatalf("watch of workers ended (%v) with %d of %d registered", resp.Err(), len(seen), len(ttls))
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				seen[string(ev.Kv.Key)] = true
			}
		}
	}

	resp, err := a.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetWorkers()) != len(ttls) {
		t.Fatalf("ListWorkers = %d workers, want %d", len(resp.GetWorkers()), len(ttls))
	}
	for _, w := range resp.GetWorkers() {
		ttl := ttls[w.GetId()]
		rem := w.GetLeaseRemainingSeconds()
		t.Logf("%s: lease %x ttl %ds remaining %.0fs", w.GetId(), w.GetLeaseId(), w.GetLeaseTtlSeconds(), rem)
		if w.GetLeaseTtlSeconds() != int64(ttl/time.Second) {
			t.Errorf("%s: lease_ttl_seconds = %d, want %d", w.GetId(), w.GetLeaseTtlSeconds(), int64(ttl/time.Second))
		}
		if rem <= 0 || rem > float64(w.GetLeaseTtlSeconds()) {
			t.Errorf("%s: lease_remaining_seconds = %v, want in (0, %d]", w.GetId(), rem, w.GetLeaseTtlSeconds())
		}
	}

	// A lease etcd does not know leaves 0, and the listing still succeeds.
	ws := []*cefiotv1.Worker{{Id: "gone", LeaseId: 0x7eadbeef}, {Id: "no-lease"}}
	a.fillLeaseRemaining(ctx, ws)
	for _, w := range ws {
		if w.GetLeaseRemainingSeconds() != 0 {
			t.Errorf("%s: lease_remaining_seconds = %v, want 0", w.GetId(), w.GetLeaseRemainingSeconds())
		}
	}
}
