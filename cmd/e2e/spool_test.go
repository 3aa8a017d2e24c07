package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
)

// edgeKafkaOutage is how long TestEdgeKafkaDownCaptureSpools keeps two of
// the three edge brokers away.
const edgeKafkaOutage = 2 * time.Minute

// TestEdgeKafkaDownCaptureSpools: the edge Kafka cluster (3 brokers,
// replication 3, min.insync 2) loses 2 brokers for two minutes while a
// camera sends motion frames: no produce can be acknowledged. Capture
// spools its frames to disk instead of holding them in memory, and when
// the brokers return it sends them on: the store holds every motion frame
// the camera produced, exactly once, and none was dropped.
func TestEdgeKafkaDownCaptureSpools(t *testing.T) {
	if testing.Short() {
		t.Skip("two-minute fault test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	// 25 fps, motion in every frame: 20 s before the outage, the outage,
	// and 20 s after it.
	frames := int((edgeKafkaOutage + 40*time.Second) / (40 * time.Millisecond))
	video, spec := faultVideo(t, dir, frames)
	want := spec.MotionFrames()
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"}, Logger: logger, EdgeBrokers: 3,
	})
	go func() {
		for {
			select {
			case e := <-stack.Exits():
				if e.Service == "capture" {
					t.Errorf("capture died while the edge Kafka was down: %v", e)
				} else {
					t.Logf("%s exited (restarted): %v", e.Service, tail(e.Error(), 3))
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	awaitStored(ctx, t, stack, 50)
	capture := stack.HTTP("capture")
	counters := func() map[string]int64 {
		c, err := stack.ReadCounters(ctx, capture+"/v1/capture/status")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const spoolFrames, spoolBytes = `cefiot_capture_spool_frames{camera="cam-1"}`, `cefiot_capture_spool_bytes{camera="cam-1"}`

	nodes := stack.Edge.Nodes()
	down := time.Now()
	for _, n := range nodes[1:] {
		if err := stack.Edge.StopBroker(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("edge brokers %d and %d stopped; broker %d alone cannot meet min.insync 2", nodes[1].ID, nodes[2].ID, nodes[0].ID)
	awaitState(ctx, t, "capture spooling", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		return m[spoolFrames] > 0, fmt.Sprintf("%v frames in the spool", m[spoolFrames])
	})
	spoolingAfter := time.Since(down)
	// The outage itself is the point: a fixed duration, not a wait for an
	// event. Meanwhile the spool is watched.
	var peakFrames, peakBytes float64
	for time.Now().Before(down.Add(edgeKafkaOutage)) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		peakFrames, peakBytes = max(peakFrames, m[spoolFrames]), max(peakBytes, m[spoolBytes])
		time.Sleep(time.Second)
	}
	during := counters()
	for _, n := range nodes[1:] {
		if err := stack.Edge.StartBroker(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	back := time.Now()
	if min := int64(edgeKafkaOutage.Seconds() * 25 / 2); during["spooled"] < min {
		t.Fatalf("%d frames spooled during the %v outage, want at least %d (25 fps)", during["spooled"], edgeKafkaOutage, min)
	}
	awaitState(ctx, t, "the spool drained", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		return m[spoolFrames] == 0, fmt.Sprintf("%v frames in the spool", m[spoolFrames])
	})
	drained := time.Since(back)
	if _, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil); err != nil {
		t.Fatal(err)
	}
	stored := time.Since(back)
	var c map[string]int64
	awaitState(ctx, t, "the camera finished", func() (bool, string) {
		c = counters()
		return c["motion_frames"] == int64(want) && c["published"] >= int64(want), fmt.Sprint(c)
	})
	checkStoreExactlyOnce(ctx, t, stack, want)
	if c["published"] == 0 || c["spooled"] == 0 {
		t.Fatalf("capture counters %v: nothing published or nothing spooled", c)
	}
	if c["spool_dropped"] != 0 || c["spool_drained"] != c["spooled"] || c["published"] != int64(want) {
		t.Errorf("capture counters %v: want %d published, every spooled frame drained, none dropped", c, want)
	}
	t.Logf("camera produced %d motion frames; %d during the %v outage went to the spool (from %.1fs after the brokers stopped), peak %.0f frames / %.1f MB; "+
		"spool drained %.1fs and every frame stored %.1fs after the brokers returned; %d published, %d dropped, store holds %d, each once",
		c["motion_frames"], c["spooled"], edgeKafkaOutage, spoolingAfter.Seconds(), peakFrames, peakBytes/1e6,
		drained.Seconds(), stored.Seconds(), c["published"], c["spool_dropped"], want)
}
