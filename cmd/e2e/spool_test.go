package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// edgeKafkaOutage is how long TestEdgeKafkaDownCaptureSpools keeps two of
// the three edge brokers away.
const edgeKafkaOutage = 2 * time.Minute

const spoolFramesMetric, spoolBytesMetric = `cefiot_capture_spool_frames{camera="cam-1"}`, `cefiot_capture_spool_bytes{camera="cam-1"}`

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
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	stack, want := spoolStack(ctx, t, edgeKafkaOutage)
	o := edgeKafkaDown(ctx, t, stack, edgeKafkaOutage)
	if min := int64(edgeKafkaOutage.Seconds() * 25 / 2); o.spooledDuring < min {
		t.Fatalf("%d frames spooled during the %v outage, want at least %d (25 fps)", o.spooledDuring, edgeKafkaOutage, min)
	}
	c := awaitCameraDone(ctx, t, stack, want)
	awaitStored(ctx, t, stack, int64(want))
	stored := time.Since(o.back)
	checkStoreExactlyOnce(ctx, t, stack, want)
	if c["published"] == 0 || c["spooled"] == 0 {
		t.Fatalf("capture counters %v: nothing published or nothing spooled", c)
	}
	if c["spool_dropped"] != 0 || c["spool_drained"] != c["spooled"] || c["published"] != int64(want) {
		t.Errorf("capture counters %v: want %d published, every spooled frame drained, none dropped", c, want)
	}
	t.Logf("camera produced %d motion frames; %d went to the spool during the %v outage (from %.1fs after the brokers stopped; %d in all), peak %.0f frames / %.1f MB; "+
		"spool empty %.1fs and every frame stored %.1fs after the brokers were back (the spool drains once the second broker is); %d published, %d dropped, the store holds %d, each once",
		c["motion_frames"], o.spooledDuring, edgeKafkaOutage, o.spoolingAfter.Seconds(), c["spooled"], o.peakFrames, o.peakBytes/1e6,
		o.drained.Seconds(), stored.Seconds(), c["published"], c["spool_dropped"], want)
}

// TestEdgeKafkaDownFullSpoolDropsOldest: the same outage (one minute)
// with the smallest spool capture accepts (room for one largest frame,
// 16 MiB: about 20 s of this camera). The spool fills and drops its oldest
// frames; nothing crashes. Every frame the camera produced is either in
// the store (once) or counted as dropped, the dropped ones are one run of
// the oldest spooled frames, and the camera's state names the last one.
func TestEdgeKafkaDownFullSpoolDropsOldest(t *testing.T) {
	if testing.Short() {
		t.Skip("one-minute fault test on real Kafka; skipped with -short")
	}
	const outage = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	stack, want := spoolStack(ctx, t, outage, "-spool-max-bytes", strconv.Itoa(16<<20+8))
	// The camera's state, as long as it runs: the last one seen is its
	// state once the spool has drained (however long the brokers took to
	// come back, which decides how much of the video is left).
	capConn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", stack.Config().Ports.CaptureGRPC), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer capConn.Close()
	lastState := watchCameraState(ctx, cefiotv1.NewCaptureServiceClient(capConn), "cam-1")
	o := edgeKafkaDown(ctx, t, stack, outage)
	c := awaitCameraDone(ctx, t, stack, want)
	st := lastState()
	if st == nil {
		t.Fatal("the camera's state was never read")
	}
	dropped := c["spool_dropped"]
	if dropped == 0 {
		t.Fatalf("capture counters %v: a 16 MiB spool dropped nothing in a %v outage", c, outage)
	}
	if c["published"]+dropped != int64(want) {
		t.Fatalf("capture counters %v: published + dropped = %d, want the %d motion frames", c, c["published"]+dropped, want)
	}
	awaitStored(ctx, t, stack, int64(want)-dropped)
	checkStoreExactlyOnce(ctx, t, stack, int(int64(want)-dropped))

	// The missing frames are one run of sequences, the last of which the
	// camera's state names.
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var seqs []int
	for _, f := range listAll(ctx, t, cefiotv1.NewSinkServiceClient(conn)) {
		seqs = append(seqs, int(f.GetSequence()))
	}
	sort.Ints(seqs)
	var gaps [][2]int
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			gaps = append(gaps, [2]int{seqs[i-1] + 1, seqs[i] - 1})
		}
	}
	if len(gaps) != 1 || int64(gaps[0][1]-gaps[0][0]+1) != dropped {
		t.Fatalf("missing sequences %v, want one run of %d", gaps, dropped)
	}
	if st.GetSpoolDroppedFrames() != dropped || !strings.Contains(st.GetLastSpoolGap(), fmt.Sprintf("_%08d", gaps[0][1])) {
		t.Errorf("camera state: %d dropped, last gap %q; want %d and frame %d named", st.GetSpoolDroppedFrames(), st.GetLastSpoolGap(), dropped, gaps[0][1])
	}
	t.Logf("camera produced %d motion frames; %d spooled during the %v outage, peak %.0f frames / %.1f MB in a 16 MiB spool; "+
		"%d dropped (sequences %d..%d, the oldest spooled), %d published and stored once; last gap: %s",
		want, o.spooledDuring, outage, o.peakFrames, o.peakBytes/1e6, dropped, gaps[0][0], gaps[0][1], c["published"], st.GetLastSpoolGap())
}

// spoolStack starts a stack with a 3-broker edge cluster and one camera
// whose video has motion in every frame, 25 fps in real time: 20 s
// before an outage of d, the outage and 20 s after. It returns once frames
// reach the store, with the number of motion frames.
func spoolStack(ctx context.Context, t *testing.T, d time.Duration, captureArgs ...string) (*localstack.Stack, int) {
	t.Helper()
	dir := t.TempDir()
	video, spec := faultVideo(t, dir, int((d+40*time.Second)/(40*time.Millisecond)))
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Cameras: []string{"cam-1"}, Logger: logger, EdgeBrokers: 3, BinaryArgs: map[string][]string{"capture": captureArgs},
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
	return stack, spec.MotionFrames()
}

type outage struct {
	spoolingAfter, drained time.Duration // after the stop, after the return
	peakFrames, peakBytes  float64
	spooledDuring          int64
	back                   time.Time
}

// edgeKafkaDown stops two of the three edge brokers for d (broker 1 alone
// cannot meet min.insync 2), watching capture's spool, starts them again
// and waits until the spool is empty.
func edgeKafkaDown(ctx context.Context, t *testing.T, stack *localstack.Stack, d time.Duration) outage {
	t.Helper()
	var o outage
	capture := stack.HTTP("capture")
	nodes := stack.Edge.Nodes()
	down := time.Now()
	for _, n := range nodes[1:] {
		if err := stack.Edge.StopBroker(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("edge brokers %d and %d stopped; broker %d alone cannot meet min.insync 2", nodes[1].ID, nodes[2].ID, nodes[0].ID)
	before := captureCounters(ctx, t, stack)["spooled"]
	awaitState(ctx, t, "capture spooling", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		return m[spoolFramesMetric] > 0, fmt.Sprintf("%v frames in the spool", m[spoolFramesMetric])
	})
	o.spoolingAfter = time.Since(down)
	// The outage itself is the point: a fixed duration, not a wait for an
	// event. Meanwhile the spool is watched.
	for time.Now().Before(down.Add(d)) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		o.peakFrames, o.peakBytes = max(o.peakFrames, m[spoolFramesMetric]), max(o.peakBytes, m[spoolBytesMetric])
		time.Sleep(time.Second)
	}
	for _, n := range nodes[1:] {
		if err := stack.Edge.StartBroker(ctx, n.ID); err != nil {
			t.Fatal(err)
		}
	}
	o.back = time.Now()
	o.spooledDuring = captureCounters(ctx, t, stack)["spooled"] - before
	t.Logf("edge brokers back %.1fs after the first was stopped", o.back.Sub(down).Seconds())
	awaitState(ctx, t, "the spool drained", func() (bool, string) {
		m := scrapeMetrics(ctx, t, stack.OperatorHTTP(), capture)
		return m[spoolFramesMetric] == 0, fmt.Sprintf("%v frames in the spool", m[spoolFramesMetric])
	})
	o.drained = time.Since(o.back)
	return o
}

func captureCounters(ctx context.Context, t *testing.T, stack *localstack.Stack) map[string]int64 {
	t.Helper()
	c, err := stack.ReadCounters(ctx, stack.HTTP("capture")+"/v1/capture/status")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitCameraDone waits until the camera has read its whole video and
// every frame is acknowledged or counted as dropped.
func awaitCameraDone(ctx context.Context, t *testing.T, stack *localstack.Stack, want int) map[string]int64 {
	t.Helper()
	var c map[string]int64
	awaitState(ctx, t, "the camera finished", func() (bool, string) {
		c = captureCounters(ctx, t, stack)
		return c["motion_frames"] == int64(want) && c["published"]+c["spool_dropped"] >= int64(want), fmt.Sprint(c)
	})
	return c
}

// watchCameraState reads camera's state every 100 ms until ctx ends; the
// function returned gives the last state read (nil before the first).
func watchCameraState(ctx context.Context, c cefiotv1.CaptureServiceClient, camera string) func() *cefiotv1.CameraState {
	var mu sync.Mutex
	var last *cefiotv1.CameraState
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if r, err := c.GetCamera(ctx, &cefiotv1.GetCameraRequest{CameraId: camera}); err == nil {
				mu.Lock()
				last = r.GetCamera().GetState()
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() *cefiotv1.CameraState {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}
