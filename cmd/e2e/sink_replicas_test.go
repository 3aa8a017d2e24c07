package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestSinkReplicasShareOneIndex runs the cloud as it scales: two sink
// replicas in one consumer group, one PostgreSQL index (TLS, password),
// one object store, no placement by the scheduler. While frames flow, the
// replica that is storing them is SIGKILLed and stays down: the other
// takes its partitions, every motion frame the site sent is stored exactly once
// (counted in the index and listed by id), and once the killed replica is
// back, both answer the same searches with the same frames. Then the
// database is dropped and `sink rebuild-index` rebuilds the index from the
// object store: the same searches, the same answers.
func TestSinkReplicasShareOneIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test on real Kafka and PostgreSQL; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 600)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true,
		Logger: logger, Index: localstack.IndexPostgres, SinkReplicas: 2,
	})
	watchExits(ctx, t, stack)
	replicas := stack.SinkNames()
	sinks := map[string]cefiotv1.SinkServiceClient{}
	for _, name := range replicas {
		conn, err := grpc.NewClient(stack.ServiceGRPC(name), stack.Operator().DialOption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		sinks[name] = cefiotv1.NewSinkServiceClient(conn)
	}
	indexed := func(name string) int64 {
		st, err := sinks[name].GetStats(ctx, &cefiotv1.GetStatsRequest{})
		if err != nil {
			return -1
		}
		return st.GetFrames()
	}
	awaitState(ctx, t, "frames indexed", func() (bool, string) { return indexed(replicas[0]) >= 50, "" })

	// The victim is the replica storing frames now.
	victim, most := "", int64(-1)
	for _, name := range replicas {
		c, err := stack.ReadCounters(ctx, stack.HTTP(name)+"/v1/sink/status")
		if err != nil {
			t.Fatal(err)
		}
		if c["stored"] > most {
			victim, most = name, c["stored"]
		}
	}
	survivor := replicas[0]
	if survivor == victim {
		survivor = replicas[1]
	}
	before := indexed(survivor)
	stack.KillService(victim)
	killed := time.Now()
	t.Logf("SIGKILLed %s (it had stored %d frames; %d indexed)", victim, most, before)
	awaitState(ctx, t, "frames indexed again after the kill", func() (bool, string) { return indexed(survivor) >= before+30, "" })
	t.Logf("frames indexed again %.1fs after the kill", time.Since(killed).Seconds())

	want := int64(spec.MotionFrames())
	awaitState(ctx, t, "every motion frame indexed", func() (bool, string) { return indexed(survivor) >= want, "" })
	if got := indexed(survivor); got != want {
		t.Fatalf("the index counts %d frames, the site sent %d motion frames", got, want)
	}
	stored := listAll(ctx, t, sinks[survivor])
	checkDistinct(t, stored, int(want))
	checkPipelineExactlyOnce(ctx, t, stack.Edge.Conn(), stack.Cloud.Conn(), "edge")

	// Back, the killed replica answers as the survivor does.
	if err := stack.StartService(victim); err != nil {
		t.Fatal(err)
	}
	awaitState(ctx, t, victim+" answering", func() (bool, string) { return indexed(victim) == want, "" })
	again := listAll(ctx, t, sinks[victim])
	if !slices.Equal(frameIDs(stored), frameIDs(again)) {
		t.Fatalf("%s lists %d frames, %s %d, or in another order", survivor, len(stored), victim, len(again))
	}
	ev1, err := sinks[survivor].ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "cam-1"})
	if err != nil {
		t.Fatal(err)
	}
	ev2, err := sinks[victim].ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "cam-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev1.GetEvents()) == 0 || len(ev1.GetEvents()) != len(ev2.GetEvents()) {
		t.Fatalf("events: %s lists %d, %s %d", survivor, len(ev1.GetEvents()), victim, len(ev2.GetEvents()))
	}

	// The database is lost: `sink rebuild-index` rebuilds the index from
	// the object store, and the same searches get the same answers.
	for _, name := range replicas {
		stack.StopService(ctx, name)
	}
	if err := stack.DropIndex(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	out, err := stack.SinkCommand(ctx, "rebuild-index")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index dropped and rebuilt in %.1fs:\n%s", time.Since(began).Seconds(), out)
	for _, name := range replicas {
		if err := stack.StartService(name); err != nil {
			t.Fatal(err)
		}
	}
	awaitState(ctx, t, "the rebuilt index served", func() (bool, string) { return indexed(survivor) == want, "" })
	rebuilt := listAll(ctx, t, sinks[survivor])
	if !slices.EqualFunc(stored, rebuilt, func(a, b *cefiotv1.StoredFrame) bool { return proto.Equal(a, b) }) {
		t.Fatalf("after the rebuild the store lists %d frames (%d before), or other metadata", len(rebuilt), len(stored))
	}
	ev3, err := sinks[survivor].ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "cam-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ev1, ev3) {
		t.Fatalf("events after the rebuild differ:\n%v\nbefore:\n%v", ev3, ev1)
	}
}

// checkDistinct asserts that frames are want distinct frame ids, none
// listed twice.
func checkDistinct(t *testing.T, frames []*cefiotv1.StoredFrame, want int) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range frames {
		if seen[f.GetFrameId()] {
			t.Errorf("frame %s stored twice", f.GetFrameId())
		}
		seen[f.GetFrameId()] = true
	}
	if len(seen) != want {
		t.Fatalf("the store lists %d distinct frames, want %d", len(seen), want)
	}
}

func frameIDs(frames []*cefiotv1.StoredFrame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.GetFrameId()
	}
	return out
}
