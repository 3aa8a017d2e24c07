package capture

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/kafkax"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/capture/internal/spool"
)

// testFrame is frame i of cam-1 with a JPEG of a fixed size, so every
// frame encodes to the same number of bytes (sequences of 3 varint bytes).
func testFrame(i int) (*cefiotv1.Frame, []byte) {
	f := &cefiotv1.Frame{
		FrameId: testFrameID(i), CameraId: "cam-1", SessionEpoch: 7, Sequence: 100_000 + uint64(i),
		CaptureTime: timestamppb.New(time.Unix(1_700_000_000, 0)), Jpeg: []byte(strings.Repeat("j", 1000)),
	}
	b, err := proto.Marshal(f)
	if err != nil {
		panic(err)
	}
	return f, b
}

func testFrameID(i int) string { return FrameID("cam-1", 7, 100_000+uint64(i)) }

// notEnoughReplicas is Kafka's NOT_ENOUGH_REPLICAS error code: the answer
// of a cluster that cannot meet min.insync.replicas.
const notEnoughReplicas = 19

// refuseProduce makes cluster answer every produce request with
// NOT_ENOUGH_REPLICAS while down is set.
func refuseProduce(cluster *kfake.Cluster, down *atomic.Bool) {
	cluster.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, notEnoughReplicas
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

func spooledPublisher(t *testing.T, conn kafkax.Conn, dir string, max int64, after time.Duration, m *metrics, cam *CameraRun) *publisher {
	t.Helper()
	pub, err := newPublisher(conn, "frames", m)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := newSpooler(pub, dir, max, after, "cam-1", cam, slog.New(slog.DiscardHandler), m)
	if err != nil {
		pub.close()
		t.Fatal(err)
	}
	pub.spool.Store(sp)
	return pub
}

// TestSpoolWhileKafkaRefusesThenDrainInOrder: while the cluster answers
// NOT_ENOUGH_REPLICAS, frames go to the spool (after the first ones wait
// longer than spool-after); a restart in the middle keeps the spool; when
// the cluster accepts again every frame arrives once, in order.
func TestSpoolWhileKafkaRefusesThenDrainInOrder(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "frames"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var down atomic.Bool
	refuseProduce(cluster, &down)
	conn := kafkax.Conn{Bootstrap: cluster.ListenAddrs()[0]}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	m := newMetrics(prometheus.NewRegistry())
	send := func(pub *publisher, from, to int) {
		for i := from; i < to; i++ {
			f, b := testFrame(i)
			if err := pub.sendFrame(ctx, f, b); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	pub := spooledPublisher(t, conn, dir, 1<<20, 100*time.Millisecond, m, nil)
	send(pub, 0, 50) // Kafka up: straight
	if err := pub.flush(ctx); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	before := testutil.ToFloat64(m.spooled) // a slow first connection may have spooled a few
	send(pub, 50, 150)
	spooled := testutil.ToFloat64(m.spooled) - before
	if spooled < 50 || testutil.ToFloat64(m.spoolFrames.WithLabelValues("cam-1")) == 0 {
		t.Fatalf("%v frames spooled while Kafka refused 100, want at least 50 in the spool", spooled)
	}
	// A restart while Kafka still refuses: the spool survives, the
	// frames held in memory by the old producer are lost with it.
	inMemory := 100 - int(spooled)
	pub.close()
	pub = spooledPublisher(t, conn, dir, 1<<20, 100*time.Millisecond, m, nil)
	defer pub.close()
	send(pub, 150, 200) // behind the spool
	down.Store(false)
	send(pub, 200, 250)
	if err := pub.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(m.spoolFrames.WithLabelValues("cam-1")); n != 0 {
		t.Fatalf("%v frames left in the spool after the flush", n)
	}

	got := readFrameIDs(t, conn, "frames")
	var want []string
	for i := range 250 {
		if i >= 50 && i < 50+inMemory {
			continue // in the first producer's memory when it closed
		}
		want = append(want, testFrameID(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("topic holds %d frames, want %d in order (%d were in memory at the restart):\n got %v\nwant %v", len(got), len(want), inMemory, got, want)
	}
	t.Logf("%d frames in order, %v spooled, %v drained, %d held in memory at the restart", len(got), testutil.ToFloat64(m.spooled), testutil.ToFloat64(m.drained), inMemory)
}

func readFrameIDs(t *testing.T, conn kafkax.Conn, topic string) []string {
	t.Helper()
	consumer, err := kafka.NewConsumer(kafkax.Config(conn, map[string]any{"group.id": "check", "auto.offset.reset": "earliest", "enable.partition.eof": true}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = consumer.Close() }()
	if err := consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		switch e := consumer.Poll(500).(type) {
		case *kafka.Message:
			ids = append(ids, string(e.Headers[0].Value))
		case kafka.PartitionEOF:
			return ids
		case kafka.Error:
			t.Fatal(e)
		}
	}
	t.Fatalf("no end of %s after %d frames", topic, len(ids))
	return nil
}

// TestFullSpoolDropsOldestAndCounts: with Kafka unreachable, a spool that
// holds 20 frames, given 200, drops exactly the 180 oldest and says so in
// the metric and the camera's state.
func TestFullSpoolDropsOldestAndCounts(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	cam := newCameraRun("cam-1", Overrides{}, Overrides{})
	_, b := testFrame(0)
	const fits, sent = 20, 200
	pub := spooledPublisher(t, kafkax.Conn{Bootstrap: "127.0.0.1:1"}, t.TempDir(), fits*int64(len(b)+8), time.Millisecond, m, cam)
	ctx := context.Background()
	f, b := testFrame(0)
	if err := pub.sendFrame(ctx, f, b); err != nil { // straight, never acknowledged
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	for i := 1; i <= sent; i++ {
		f, b := testFrame(i)
		if err := pub.sendFrame(ctx, f, b); err != nil {
			t.Fatal(err)
		}
	}
	st := cam.State()
	dropped := testutil.ToFloat64(m.spoolDropped)
	// The drainer's first batch is with the producer (unacknowledged):
	// dropped from the disk, those frames are not lost yet.
	flying, flyingDropped := pub.spool.Load().flights()
	want := sent - fits - flyingDropped
	if dropped != float64(want) || st.SpoolDropped != int64(want) || st.SpoolFrames != fits {
		t.Fatalf("dropped %v (state %d), %d left in the spool, %d in flight of which %d no longer spooled; want %d dropped, %d left",
			dropped, st.SpoolDropped, st.SpoolFrames, flying, flyingDropped, want, fits)
	}
	if last := testFrameID(sent - fits); !strings.Contains(st.LastSpoolGap, last) {
		t.Fatalf("last gap %q does not name the newest dropped frame %s", st.LastSpoolGap, last)
	}
	t.Logf("%d frames into a spool of %d: %v dropped, %d with the producer; last gap: %s", sent, fits, dropped, flyingDropped, st.LastSpoolGap)
	// The producer closes with them: lost after all, and counted.
	pub.close()
	if got := testutil.ToFloat64(m.spoolDropped); got != sent-fits {
		t.Fatalf("after the close %v frames counted lost, want %d", got, sent-fits)
	}
}

// TestSpoolGarbageIsAGapNotACrash: a spool left with records that are not
// frames (a damaged or foreign file that still passes its checksums) is
// drained around them: each counts as one lost frame, the frames get
// through.
func TestSpoolGarbageIsAGapNotACrash(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "frames"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	conn := kafkax.Conn{Bootstrap: cluster.ListenAddrs()[0]}
	dir := t.TempDir()
	sp, _, err := spool.Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// frame 0, garbage, frame 2, a frame without an id (field 2,
	// camera_id, only), a frame of another camera.
	other, _ := proto.Marshal(&cefiotv1.Frame{FrameId: "cam-2_7_00000001", CameraId: "cam-2"})
	for i, data := range [][]byte{nil, []byte("\xff\xff not a frame"), nil, {0x12, 0x01, 'x'}, other} {
		if data == nil {
			_, data = testFrame(i)
		}
		if _, err := sp.Append(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	m := newMetrics(prometheus.NewRegistry())
	cam := newCameraRun("cam-1", Overrides{}, Overrides{})
	pub := spooledPublisher(t, conn, dir, 1<<20, time.Second, m, cam)
	defer pub.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := readFrameIDs(t, conn, "frames"), []string{testFrameID(0), testFrameID(2)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("topic holds %v, want %v", got, want)
	}
	if d := testutil.ToFloat64(m.spoolDropped); d != 3 || cam.State().SpoolDropped != 3 {
		t.Fatalf("%v frames counted lost (state %d), want the 3 records that are not frames of cam-1", d, cam.State().SpoolDropped)
	}
	t.Logf("last gap: %s", cam.State().LastSpoolGap)
}
