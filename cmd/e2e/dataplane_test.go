package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// checkEvents: the sample video's one motion episode is one ended event of
// all the motion frames, with its best frame, and every frame has a
// thumbnail served as an image.
func checkEvents(ctx context.Context, t *testing.T, stack *localstack.Stack, sink cefiotv1.SinkServiceClient, want int) {
	t.Helper()
	resp, err := sink.ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "cam-1"})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if len(resp.GetEvents()) != 1 {
		t.Fatalf("events %v, want one", resp.GetEvents())
	}
	ev := resp.GetEvents()[0]
	if ev.GetFrameCount() != int64(want) || !ev.GetEnded() || ev.GetBestFrameId() == "" || ev.GetPeakScore() <= 0 || len(ev.GetBoxes()) == 0 {
		t.Fatalf("event %v: want %d frames, ended, a best frame with boxes", ev, want)
	}
	frames, err := sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{EventId: ev.GetEventId(), PageSize: 1000})
	if err != nil || len(frames.GetFrames()) != want {
		t.Fatalf("frames of the event: %d, %v", len(frames.GetFrames()), err)
	}
	first, last := frames.GetFrames()[0], frames.GetFrames()[want-1]
	if first.GetEventPhase() != cefiotv1.EventPhase_EVENT_PHASE_START || last.GetEventPhase() != cefiotv1.EventPhase_EVENT_PHASE_END ||
		first.GetThumbnailSizeBytes() == 0 {
		t.Fatalf("first frame %v / last frame %v: want START and END phases and a thumbnail", first, last)
	}
	hr, err := stack.OperatorHTTP().Get(stack.SinkHTTP() + "/v1/frames/" + ev.GetBestFrameId() + "/thumbnail")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != 200 || hr.Header.Get("Content-Type") != "image/jpeg" || len(body) < 100 || body[0] != 0xFF || body[1] != 0xD8 {
		t.Fatalf("thumbnail: HTTP %d %s, %d bytes", hr.StatusCode, hr.Header.Get("Content-Type"), len(body))
	}
	st, err := sink.GetStats(ctx, &cefiotv1.GetStatsRequest{})
	if err != nil || st.GetFrames() != int64(want) || st.GetEvents() != 1 || len(st.GetCameras()) != 1 {
		t.Fatalf("stats %v, %v", st, err)
	}
}

// checkDeadLetter waits for the garbage record in a dead-letter topic and
// checks its reason headers.
func checkDeadLetter(ctx context.Context, t *testing.T, bootstrap kafkax.Conn, topic, stage string) {
	t.Helper()
	c, err := kafka.NewConsumer(bootstrap.Config(map[string]any{
		"group.id": "e2e-dlq-" + stage, "auto.offset.reset": "earliest",
		"isolation.level": "read_committed",
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		m, err := c.ReadMessage(500 * time.Millisecond)
		if err != nil {
			continue
		}
		reason, _ := kafkax.Header(m, pipeline.HeaderDLQReason)
		code, _ := kafkax.Header(m, pipeline.HeaderDLQCode)
		st, _ := kafkax.Header(m, pipeline.HeaderDLQStage)
		if string(m.Value) != "\xff\xfe\x00\x13\x37" || code != "decode" || st != stage || reason == "" {
			t.Fatalf("dead letter in %s: value %x code %q stage %q reason %q", topic, m.Value, code, st, reason)
		}
		return
	}
	t.Fatalf("no dead letter in %s", topic)
}
