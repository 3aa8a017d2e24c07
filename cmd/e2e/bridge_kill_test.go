package e2e

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// awaitForwarding waits until bridge b has committed a transaction.
func awaitForwarding(t *testing.T, b *bridgeharness.Bridge, timeout time.Duration) {
	t.Helper()
	c, closeConn, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		return s.GetLastCommitTime() != nil
	}); err != nil {
		t.Fatalf("bridge does not forward: %v\n%s", err, b.Tail(30))
	}
}

// TestBridgeExactlyOnceThroughKills SIGKILLs the bridge 20 times at random
// moments while records flow into two topics (one created midway and
// picked up by the topic regex), then runs a zombie (a bridge of another
// control plane with the same site and workload, hence the same
// transactional id) beside the real one, and checks that every cloud
// partition, read_committed, holds its edge partition's records exactly
// once and in order, with key, headers and timestamp kept.
func TestBridgeExactlyOnceThroughKills(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka")
	}
	e := newBridgeEnv(t, envOptions{})
	e.logTailOnFailure()
	e.createEdgeTopic("kills.a", 4, nil)
	params := map[string]string{"topic-regex": `kills\..*`}
	e.schedule(params)
	fa := e.feeder("kills.a", 4, 1000)
	fa.Run(400)
	var fb *bridgeharness.Feeder

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	args := []string{"-batch-wait", "50ms"}
	b := e.startBridge(args...)
	const kills = 20
	start := time.Now()
	for i := range kills {
		// A random moment while the bridge forwards: anywhere in a
		// transaction, a commit or between two.
		awaitForwarding(t, b, 90*time.Second)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		b.Kill()
		if i == 7 {
			e.createEdgeTopic("kills.b", 2, nil)
			fb = e.feeder("kills.b", 2, 500)
			fb.Run(100)
		}
		b = e.startBridge(args...)
	}
	t.Logf("%d SIGKILLs in %v; %d + %d records sent", kills, time.Since(start).Round(time.Second), fa.Sent(), fb.Sent())

	// A zombie: a bridge started by another control plane for the same
	// site and workload. Both use one transactional id and fence each
	// other; neither may duplicate or lose a record.
	_, zcli := etcdtest.StartSecure(t, e.pki)
	zetcd := zcli.Endpoints()[0]
	e.scheduleOn(zetcd, "scheduler-zombie", params)
	zombie := e.startBridgeOn(zetcd, "bridge-zombie", args...)
	awaitForwarding(t, zombie, 90*time.Second)
	time.Sleep(5 * time.Second)
	zombie.Kill()
	select {
	case <-b.Done():
		t.Fatalf("the bridge exited (%v) while the zombie ran beside it:\n%s", b.Err(), b.Tail(40))
	default:
	}
	fenced := false
	for _, logs := range e.bridgeLogs() {
		fenced = fenced || strings.Contains(strings.ToLower(string(logs)), "fenced")
	}
	if !fenced {
		t.Fatal("the zombie and the bridge ran side by side, but neither was fenced")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []*bridgeharness.Feeder{fa, fb} {
		if err := f.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if f.Failed() > 0 {
			t.Fatalf("feeder lost %d records at the edge", f.Failed())
		}
	}
	na := e.checkCopy(t, "kills.a", nil)
	nb := e.checkCopy(t, "kills.b", nil)
	t.Logf("exactly once through %d kills and a zombie: %d + %d records", kills, na, nb)

	c, closeConn, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn()
	st, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		return s.GetLink() == cefiotv1.LinkState_LINK_STATE_UP && len(s.GetPartitions()) == 6 && s.GetBacklogRecords() == 0
	})
	if err != nil {
		t.Fatalf("status after the run: %v; last: %v", err, st)
	}
	topics, err := c.ListTopics(ctx, &cefiotv1.ListTopicsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(topics.GetTopics()) != 2 || topics.GetTopics()[1].GetCloudTopic() != "edge-edge.kills.b" || topics.GetTopics()[1].GetPartitions() != 2 {
		t.Fatalf("ListTopics = %v", topics)
	}
}
