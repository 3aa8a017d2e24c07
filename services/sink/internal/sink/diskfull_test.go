package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/harness/smallfs"
	"github.com/cefiot/cefiot/libs/logging"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/sink/internal/store"
)

// TestDiskFullIsSaidOncePerChange: a full disk sets the gauge and the
// health once, however many writes fail, and a batch stored clears both.
func TestDiskFullIsSaidOncePerChange(t *testing.T) {
	var health []bool
	s := &sink{metrics: newMetrics(prometheus.NewRegistry()), serving: func(ok bool) { health = append(health, ok) }}
	logger := logging.Discard()
	full := fmt.Errorf("store frame x: %w", &os.PathError{Op: "write", Path: "/store/x", Err: syscall.ENOSPC})
	for range 3 {
		if !isDiskFull(full) {
			t.Fatalf("isDiskFull(%v) = false", full)
		}
		s.reportDiskFull(logger, full)
	}
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 1 {
		t.Fatalf("gauge %v while full", got)
	}
	s.reportRoom(logger)
	s.reportRoom(logger)
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 0 || len(health) != 2 || health[0] || !health[1] {
		t.Fatalf("after room again: gauge %v, health changes %v; want 0 and [false true]", got, health)
	}
	if isDiskFull(errors.New("file resize error: "+syscall.ENOSPC.Error())) == false {
		t.Error("bbolt's text-only resize error is not seen as a full disk")
	}
	if isDiskFull(errors.New("connection refused")) {
		t.Error("another error is seen as a full disk")
	}
}

// TestDiskFullRaceEndsWithTheLastChange: reports of a full disk and of
// room come at once from many goroutines; then a batch is stored. The gauge and
// the health end saying so, every time: a transition said out of order
// would leave them saying "full" for good.
func TestDiskFullRaceEndsWithTheLastChange(t *testing.T) {
	logger := slog.New(slowHandler{}) // a log write takes time, as on a busy disk
	full := &os.PathError{Op: "write", Path: "/store/x", Err: syscall.ENOSPC}
	for trial := range 100 {
		var mu sync.Mutex
		serving := true
		s := &sink{metrics: newMetrics(prometheus.NewRegistry()), serving: func(ok bool) { mu.Lock(); serving = ok; mu.Unlock() }}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					if (g+i)%2 == 0 {
						s.reportDiskFull(logger, full)
					} else {
						s.reportRoom(logger)
					}
				}
			}()
		}
		wg.Wait()
		s.reportRoom(logger)
		mu.Lock()
		ok := serving
		mu.Unlock()
		if got := testutil.ToFloat64(s.metrics.diskFull); got != 0 || !ok {
			t.Fatalf("trial %d: after a frame fitted: gauge %v, serving %v; want 0 and true", trial, got, ok)
		}
	}
}

// slowHandler discards records, each after a short wait.
type slowHandler struct{}

func (slowHandler) Enabled(context.Context, slog.Level) bool { return true }
func (slowHandler) Handle(context.Context, slog.Record) error {
	time.Sleep(20 * time.Microsecond)
	return nil
}
func (h slowHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowHandler) WithGroup(string) slog.Handler      { return h }

// TestBatchNearTheLimitKeepsTheDiskFull stores a batch on a real 1 MiB
// filesystem: one frame is larger than the disk, the others small and
// stored at the same time. The small ones fit, but the batch cannot be
// committed, so the disk stays full (the gauge and the health) until the
// filesystem grows and the batch, read again, is stored whole.
func TestBatchNearTheLimitKeepsTheDiskFull(t *testing.T) {
	dir := t.TempDir()
	smallfs.Mount(t, dir, 1<<20)
	ctx := context.Background()
	st, err := store.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var health []bool
	s := &sink{
		cfg:     Config{StoreConcurrency: 4, MaxFrameBytes: 8 << 20},
		metrics: newMetrics(prometheus.NewRegistry()), store: st,
		serving: func(ok bool) { health = append(health, ok) },
	}
	batch := []*kafka.Message{enrichedRecord(t, 0, 2<<20)}
	for seq := 1; seq < 8; seq++ {
		batch = append(batch, enrichedRecord(t, seq, 1<<10))
	}
	logger := logging.Discard()

	err = s.storeBatch(ctx, logger, nil, batch)
	if !isDiskFull(err) {
		t.Fatalf("a batch with a frame larger than the disk: %v, want a full disk", err)
	}
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 1 || len(health) != 1 || health[0] {
		t.Fatalf("after the batch failed (%v small frames stored): gauge %v, health changes %v; want 1 and [false]",
			testutil.ToFloat64(s.metrics.stored), got, health)
	}

	smallfs.Grow(t, dir, 16<<20)
	if err := s.storeBatch(ctx, logger, nil, batch); err != nil {
		t.Fatalf("the same batch once the disk has room: %v", err)
	}
	if got := testutil.ToFloat64(s.metrics.stored); got != 8 {
		t.Errorf("%v frames stored in all, want 8 (each once)", got)
	}
	if got := testutil.ToFloat64(s.metrics.diskFull); got != 0 || len(health) != 2 || !health[1] {
		t.Fatalf("after the batch was stored whole: gauge %v, health changes %v; want 0 and [false true]", got, health)
	}
}

// enrichedRecord is the Kafka record of an enriched frame of camera cam-1
// with a JPEG of size bytes.
func enrichedRecord(t *testing.T, seq, size int) *kafka.Message {
	t.Helper()
	jpeg := make([]byte, size)
	copy(jpeg, []byte{0xFF, 0xD8})
	copy(jpeg[size-2:], []byte{0xFF, 0xD9})
	value, err := proto.Marshal(&cefiotv1.EnrichedFrame{Site: "edge", Frame: &cefiotv1.Frame{
		FrameId: fmt.Sprintf("cam-1_9_%08d", seq), CameraId: "cam-1", SessionEpoch: 9, Sequence: uint64(seq),
		CaptureTime: timestamppb.New(t0.Add(time.Duration(seq) * time.Second)), Jpeg: jpeg,
	}})
	if err != nil {
		t.Fatal(err)
	}
	topic := "edge-site.frames.enriched"
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Offset: kafka.Offset(seq)}, Value: value}
}
