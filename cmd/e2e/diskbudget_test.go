package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cefiot/cefiot/cmd/internal/bridgeharness"
	"github.com/cefiot/cefiot/libs/harness/smallfs"
	"github.com/cefiot/cefiot/libs/kafkaconf"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestEdgeDiskBudgetOutage puts the edge Kafka's log dir on a real 128 MiB
// filesystem, plans its retention from that budget, cuts the WAN and feeds
// 100 KB frames until half as much again as the filesystem holds was
// produced. The broker keeps running (same process, never out of space,
// the filesystem never full): retention deletes the oldest records instead.
// When the WAN returns, the bridge reports exactly the records the edge
// deleted before it forwarded them (sent minus arrived, its gap markers, its
// status and metric all agree with the edge's log start), and every newer
// frame, the newest included, arrives in the cloud once and in order.
func TestEdgeDiskBudgetOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka with a WAN cut")
	}
	const (
		fsBytes    = 128 << 20
		topic      = "budget.frames"
		partitions = 2
		frameBytes = 100_000
		rate       = 20 // frames a second: 2 MB/s
	)
	base := filepath.Join(t.TempDir(), "edge-kafka")
	data := filepath.Join(base, "node-1", "data") // the node's log dir
	// Registered before the cluster's cleanup, so it is unmounted after the stop.
	smallfs.Mount(t, data, fsBytes)
	e := newBridgeEnv(t, envOptions{netns: true, edgeBase: base,
		// Records up to 2 MiB and one partition for each internal topic, so
		// that a small filesystem holds more than the least of a budget.
		edgeProps: map[string]string{"message.max.bytes": "2097152",
			"offsets.topic.num.partitions": "1", "transaction.state.log.num.partitions": "1"},
		edgeBudget: &kafkaconf.Budget{Bytes: fsBytes, Topics: []kafkaconf.BudgetTopic{{Name: topic, Partitions: partitions}}, IngressBytesPerSec: 2 << 20},
	})
	e.logTailOnFailure()
	plan, ok := e.edge.DiskBudget()
	if !ok {
		t.Fatal("the edge cluster has no disk budget")
	}
	t.Logf("budget %d MiB: %d partitions, retention.bytes %d, segment.bytes %d; reserved: internal topics %d, metadata log %d, headroom %d",
		fsBytes>>20, plan.Partitions, plan.RetentionBytes, plan.SegmentBytes, plan.Internal, plan.Metadata, plan.Headroom)
	broker := e.edge.Nodes()[0]
	if !broker.Running || broker.PID == 0 {
		t.Fatalf("edge broker not running: %+v", broker)
	}

	// The topic is created as the services create theirs: with no configs,
	// so the budget's broker defaults apply.
	e.createEdgeTopic(topic, partitions, nil)
	e.schedule(map[string]string{"topic-regex": `budget\..*`})
	frames := e.feeder(topic, partitions, frameBytes)
	b := e.startBridge("-transaction-timeout", "15s")
	c, closeConn, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	status := func(s *cefiotv1.GetBridgeStatusResponse) map[int32]*cefiotv1.BridgePartitionStatus {
		out := map[int32]*cefiotv1.BridgePartitionStatus{}
		for _, p := range s.GetPartitions() {
			if p.GetSourceTopic() == topic {
				out[p.GetPartition()] = p
			}
		}
		return out
	}
	// Before the cut: 20 frames forwarded, 10 a partition.
	if err := frames.Produce(20); err != nil {
		t.Fatal(err)
	}
	if err := frames.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const before = 10
	st, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		ps := status(s)
		return len(ps) == partitions && ps[0].GetCommittedOffset() == before && ps[1].GetCommittedOffset() == before
	})
	if err != nil {
		t.Fatalf("the first frames were not forwarded: %v; last %v", err, st)
	}

	if err := e.wan.Cut(); err != nil {
		t.Fatal(err)
	}
	if st, err := bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		return s.GetLink() == cefiotv1.LinkState_LINK_STATE_DOWN
	}); err != nil {
		t.Fatalf("link not reported down: %v; last %v", err, st)
	}
	// Feed until half as much again as the filesystem holds was produced,
	// watching the filesystem and the broker.
	mon := watchDisk(t, data, e, broker.PID)
	target := int64(fsBytes) * 3 / 2
	tick := time.NewTicker(time.Second / 10)
	defer tick.Stop()
	for (frames.Sent()-before*partitions)*frameBytes < target {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d frames produced: %v", frames.Sent(), ctx.Err())
		case <-mon.died:
			t.Fatalf("the edge broker died during the cut:\n%s", tailFile(broker.LogFile, 40))
		case <-tick.C:
		}
		if err := frames.Produce(rate / 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := frames.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if frames.Failed() != 0 {
		t.Fatalf("%d frames refused by the edge broker", frames.Failed())
	}
	sent := frames.Sent()
	end := sent / partitions // each partition's end offset
	cut := sent - before*partitions
	t.Logf("during the cut: %d frames, %.1f MB, into a %d MiB filesystem", cut, float64(cut*frameBytes)/1e6, fsBytes>>20)

	// Retention has deleted the oldest frames; the bridge shows them as a
	// pending gap while the WAN is still cut.
	st, err = bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		ps := status(s)
		for p := range int32(partitions) {
			if ps[p].GetEndOffset() != end || ps[p].GetStartOffset() <= before || ps[p].GetPendingGapOffsets() != ps[p].GetStartOffset()-before {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("retention gap not shown during the cut: %v; last %v", err, status(st))
	}
	for p, ps := range status(st) {
		t.Logf("partition %d during the cut: log start %d, end %d, pending gap %d", p, ps.GetStartOffset(), ps.GetEndOffset(), ps.GetPendingGapOffsets())
	}

	if err := e.wan.Restore(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	st, err = bridgeharness.AwaitStatus(ctx, c, func(s *cefiotv1.GetBridgeStatusResponse) bool {
		ps := status(s)
		for p := range int32(partitions) {
			if ps[p].GetCommittedOffset() != end || ps[p].GetPendingGapOffsets() != 0 || ps[p].GetGapOffsets() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("the backlog was not forwarded after the WAN returned: %v; last %v", err, status(st))
	}
	t.Logf("backlog forwarded %.1fs after the WAN returned", time.Since(restored).Seconds())
	mon.stop()

	// The broker: same process, never out of space, the filesystem never
	// full.
	if n := e.edge.Nodes()[0]; !n.Running || n.PID != broker.PID {
		t.Errorf("the edge broker is not the process it was: pid %d running %v, was %d", n.PID, n.Running, broker.PID)
	}
	if log, err := os.ReadFile(broker.LogFile); err != nil {
		t.Error(err)
	} else {
		for _, bad := range []string{"No space left", "KafkaStorageException", "offline log dir", "Shutdown broker because all log dirs"} {
			if strings.Contains(string(log), bad) {
				t.Errorf("edge broker log says %q:\n%s", bad, tailFile(broker.LogFile, 40))
			}
		}
	}
	t.Logf("edge log dir: at most %.1f MiB used of %d MiB (plan's worst case %.1f MiB)", float64(mon.maxUsed())/(1<<20), fsBytes>>20, float64(plan.Worst())/(1<<20))
	if used := mon.maxUsed(); used > fsBytes-fsBytes*kafkaconf.BudgetHeadroomPercent/100/2 {
		t.Errorf("the log dir used %d bytes of %d: the budget's fixed headroom is half gone", used, fsBytes)
	}

	// The gap: the edge's log start, the bridge's status and metric, its
	// gap markers and what is missing in the cloud all say the same.
	cloud, err := bridgeharness.ReadAll(ctx, e.cloud.Conn(), "edge-edge."+topic)
	if err != nil {
		t.Fatal(err)
	}
	markers := readGapMarkers(t, ctx, e.cloud.Conn(), "edge-edge._cefiot.gaps")
	var lostTotal, arrived int64
	body := httpGet(t, b, "/metrics")
	for p := range int32(partitions) {
		ps := status(st)[p]
		start := ps.GetStartOffset()
		lost := start - before
		var mine []*cefiotv1.GapMarker
		for _, m := range markers {
			if m.GetSourceTopic() == topic && m.GetSourcePartition() == p {
				mine = append(mine, m)
			}
		}
		var marked int64
		for _, m := range mine {
			marked += m.GetEndOffset() - m.GetStartOffset()
		}
		if len(mine) != 1 || mine[0].GetStartOffset() != before || mine[0].GetEndOffset() != start {
			t.Errorf("partition %d: gap markers %v, want one for [%d, %d)", p, mine, before, start)
		}
		if ps.GetGapOffsets() != lost || ps.GetGaps() != 1 {
			t.Errorf("partition %d: status gap %d in %d ranges, want %d in 1", p, ps.GetGapOffsets(), ps.GetGaps(), lost)
		}
		if metric := fmt.Sprintf(`cefiot_bridge_gap_offsets{partition="%d",topic="%s"} %d`, p, topic, lost); !strings.Contains(body, metric) {
			t.Errorf("metrics lack %q", metric)
		}
		// What the cloud holds: offsets [0, before) and [start, end) of the
		// edge partition, that is frames seq = offset*partitions + p.
		var want, got []string
		for o := int64(0); o < end; o++ {
			if o < before || o >= start {
				want = append(want, fmt.Sprintf("key-%d", o*partitions+int64(p)))
			}
		}
		for _, r := range cloud[p] {
			got = append(got, r.Key)
		}
		if !slices.Equal(got, want) {
			t.Errorf("partition %d: cloud holds %d frames %s, want %d %s", p, len(got), ends(got), len(want), ends(want))
		}
		lostTotal += lost
		arrived += int64(len(got))
		t.Logf("partition %d: %d frames sent, %d arrived, gap [%d, %d) = %d frames (markers %d)", p, end, len(got), before, start, lost, marked)
	}
	if sent-arrived != lostTotal {
		t.Errorf("sent %d - arrived %d = %d, but the gap is %d", sent, arrived, sent-arrived, lostTotal)
	}
	newest := fmt.Sprintf("key-%d", sent-1)
	last := cloud[int32((sent-1)%partitions)]
	if len(last) == 0 || last[len(last)-1].Key != newest {
		t.Errorf("the newest frame %s did not arrive", newest)
	}
	t.Logf("sent %d frames, %d arrived, %d deleted by the edge's retention and reported as a gap; the newest, %s, arrived", sent, arrived, lostTotal, newest)
}

func ends(keys []string) string {
	if len(keys) <= 4 {
		return fmt.Sprint(keys)
	}
	return fmt.Sprintf("[%s %s ... %s %s]", keys[0], keys[1], keys[len(keys)-2], keys[len(keys)-1])
}

// diskWatch samples a filesystem's use and whether a broker process lives.
type diskWatch struct {
	died chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	max  int64
}

func watchDisk(t *testing.T, dir string, e *bridgeEnv, pid int) *diskWatch {
	w := &diskWatch{died: make(chan struct{}), done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var fs syscall.Statfs_t
			if err := syscall.Statfs(dir, &fs); err == nil {
				used := int64(fs.Blocks-fs.Bfree) * fs.Bsize
				w.mu.Lock()
				w.max = max(w.max, used)
				w.mu.Unlock()
			}
			if n := e.edge.Nodes()[0]; !n.Running || n.PID != pid {
				close(w.died)
				return
			}
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *diskWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

func (w *diskWatch) maxUsed() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
