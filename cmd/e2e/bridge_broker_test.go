package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/libs/kafkax"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestBridgeEdgeBrokerKilledAndAdmin forwards a topic of a 3-broker edge
// cluster (replication 3, min.insync 2) named by the workload's "topics"
// param, exercises the admin API (pause, resume, live rate limit, bad input
// over gRPC and REST), then SIGKILLs the broker leading partition 0 while
// records flow, brings it back, and checks that the cloud holds every record
// exactly once, in order.
func TestBridgeEdgeBrokerKilledAndAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka")
	}
	e := newBridgeEnv(t, envOptions{edgeBrokers: 3})
	e.logTailOnFailure()
	const topic = "bk.frames"
	e.createEdgeTopic(topic, 3, nil)
	e.schedule(map[string]string{"topics": topic})
	f := e.feeder(topic, 3, 10_000)
	f.Run(150) // 1.5 MB/s
	b := e.startBridge()
	awaitForwarding(t, b, 2*time.Minute)
	c, closeConn, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	forwarded := func() int64 {
		st, err := c.GetBridgeStatus(ctx, &cefiotv1.GetBridgeStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetStatus().GetCounters()["bytes_forwarded"]
	}

	t.Run("pause-resume", func(t *testing.T) {
		// Resumed however this ends, so that the next subtests run on a
		// forwarding bridge.
		defer func() { _, _ = c.Resume(ctx, &cefiotv1.ResumeRequest{}) }()
		paused, err := c.Pause(ctx, &cefiotv1.PauseRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !paused.GetHalted() {
			t.Fatal("Pause returned before the session committed its open transaction and stopped")
		}
		if st, err := c.GetBridgeStatus(ctx, &cefiotv1.GetBridgeStatusRequest{}); err != nil || !st.GetPaused() {
			t.Fatalf("status after Pause: paused=%v, %v", st.GetPaused(), err)
		}
		before := forwarded()
		time.Sleep(2 * time.Second)
		if after := forwarded(); after != before {
			t.Fatalf("forwarded %d bytes while paused", after-before)
		}
		st, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool { return s.GetBacklogRecords() > 100 })
		if err != nil {
			t.Fatalf("backlog does not grow while paused: %v", err)
		}
		t.Logf("paused: backlog %d records", st.GetBacklogRecords())
		if _, err := c.Resume(ctx, &cefiotv1.ResumeRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
			return !s.GetPaused() && s.GetBacklogRecords() < 50
		}); err != nil {
			t.Fatalf("no catch-up after resume: %v", err)
		}
	})

	t.Run("rate-limit", func(t *testing.T) {
		const limit = 500_000
		if r, err := c.SetRateLimit(ctx, &cefiotv1.SetRateLimitRequest{BytesPerSecond: limit}); err != nil || r.GetBytesPerSecond() != limit {
			t.Fatalf("SetRateLimit = %v, %v", r, err)
		}
		time.Sleep(time.Second)
		t0, b0 := time.Now(), forwarded()
		time.Sleep(5 * time.Second)
		rate := float64(forwarded()-b0) / time.Since(t0).Seconds()
		t.Logf("rate limit %d B/s: forwarded %.0f B/s (input 1.5 MB/s)", limit, rate)
		if rate > 1.25*limit || rate < 0.5*limit {
			t.Errorf("forwarded %.0f B/s under a %d B/s limit", rate, limit)
		}
		if _, err := c.SetRateLimit(ctx, &cefiotv1.SetRateLimitRequest{BytesPerSecond: 0}); err != nil {
			t.Fatal(err)
		}
		if _, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
			return s.GetRateLimitBytesPerSecond() == 0 && s.GetBacklogRecords() < 50
		}); err != nil {
			t.Fatalf("no catch-up after the limit was lifted: %v", err)
		}
		_, err := c.SetRateLimit(ctx, &cefiotv1.SetRateLimitRequest{BytesPerSecond: -1})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "bytes_per_second") {
			t.Fatalf("negative rate: %v, want InvalidArgument naming bytes_per_second", err)
		}
		client, err := b.HTTPClient()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "https://"+b.HTTPAddr+"/v1/bridge/rate-limit", strings.NewReader(`{"bytesPerSecond": -5}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("REST negative rate: HTTP %d, want 400", resp.StatusCode)
		}
		body := httpGet(t, b, "/v1/bridge/status")
		for _, want := range []string{`"link":"LINK_STATE_UP"`, `"sourceTopic":"bk.frames"`, `"backlogRecords"`} {
			if !strings.Contains(strings.ReplaceAll(body, " ", ""), want) {
				t.Errorf("REST status lacks %s: %s", want, body)
			}
		}
		if body := httpGet(t, b, "/v1/bridge/topics"); !strings.Contains(body, "edge-edge.bk.frames") {
			t.Errorf("REST topics: %s", body)
		}
	})

	t.Run("broker-killed", func(t *testing.T) {
		leader := leaderOf(t, e.edge.Conn(), topic, 0)
		if err := e.edge.KillBroker(leader); err != nil {
			t.Fatal(err)
		}
		t.Logf("killed edge broker %d (leader of %s/0)", leader, topic)
		// The bridge must keep forwarding before the dead broker returns.
		// Every partition stops for a while: the dead broker is a follower
		// in the others' in-sync sets, and neither acks=all writes nor the
		// high watermark advance until the controller fences it
		// (broker.session.timeout.ms, 6 s here). A loaded machine
		// stretches that.
		killedAt := time.Now()
		b0 := forwarded()
		deadline := killedAt.Add(90 * time.Second)
		for forwarded() < b0+200_000 {
			if time.Now().After(deadline) {
				t.Fatalf("under 200 KB forwarded in the %s after the edge broker died", time.Since(killedAt).Round(time.Second))
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("200 KB forwarded %s after the edge broker died, with it still dead", time.Since(killedAt).Round(100*time.Millisecond))
		if err := e.edge.StartBroker(ctx, leader); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if err := f.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if f.Failed() > 0 {
			t.Fatalf("feeder lost %d records at the edge", f.Failed())
		}
		n := e.checkCopy(t, topic, nil)
		t.Logf("edge broker %d killed and restarted: %d records, 0 lost, 0 duplicated", leader, n)
	})
}

func leaderOf(t *testing.T, bootstrap kafkax.Conn, topic string, partition int32) int {
	t.Helper()
	admin, err := kafka.NewAdminClient(kafkax.Config(bootstrap, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	md, err := admin.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if p.ID == partition {
			return int(p.Leader)
		}
	}
	t.Fatalf("no leader for %s/%d", topic, partition)
	return 0
}
