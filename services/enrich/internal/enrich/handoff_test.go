package enrich

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/pipeline"
)

func rec(p int32, off int64, marker string) *kafka.Message {
	t := "frames.raw"
	m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: p, Offset: kafka.Offset(off)}}
	if marker != "" {
		m.Headers = []kafka.Header{{Key: pipeline.HeaderHandoff, Value: []byte(marker)}}
	}
	return m
}

func committedAt(metas ...string) []kafka.TopicPartition {
	var out []kafka.TopicPartition
	for p, m := range metas {
		tp := kafka.TopicPartition{Partition: int32(p)}
		if m != "" {
			mm := m
			tp.Metadata = &mm
		}
		out = append(out, tp)
	}
	return out
}

// The outgoing side enriches up to the marker and stops; the incoming side
// skips up to the marker and enriches after it: each record exactly once.
func TestHandoffCutsEveryPartitionAtTheMarker(t *testing.T) {
	out := newHandoff(HandoffParams{ID: "m1", To: "cloud"}, committedAt("", ""))
	in := newHandoff(HandoffParams{ID: "m1", From: "edge"}, committedAt("", ""))
	stream := map[int32][]*kafka.Message{
		0: {rec(0, 0, ""), rec(0, 1, ""), rec(0, 2, "m1"), rec(0, 3, ""), rec(0, 4, "")},
		1: {rec(1, 0, "m1"), rec(1, 1, "")},
	}
	enriched := map[int64]int{}
	for p, msgs := range stream {
		for _, m := range msgs {
			if out.route(m) == routeEnrich {
				enriched[int64(p)*100+int64(m.TopicPartition.Offset)]++
			}
			if in.route(m) == routeEnrich {
				enriched[int64(p)*100+int64(m.TopicPartition.Offset)]++
			}
		}
	}
	want := []int64{0, 1, 3, 4, 101}
	if len(enriched) != len(want) {
		t.Fatalf("enriched %v, want each of %v once", enriched, want)
	}
	for _, k := range want {
		if enriched[k] != 1 {
			t.Fatalf("record %d enriched %d times", k, enriched[k])
		}
	}
	if !out.finished() {
		t.Fatal("outgoing side must be finished after every partition's marker")
	}
	// The states survive a restart through the committed metadata.
	again := newHandoff(HandoffParams{ID: "m1", To: "cloud"}, committedAt(*out.metadata(0), *out.metadata(1)))
	if !again.finished() || again.route(rec(0, 3, "")) != routeDrop {
		t.Fatal("restarted outgoing side must stay stopped")
	}
	inAgain := newHandoff(HandoffParams{ID: "m1", From: "edge"}, committedAt(*in.metadata(0), *in.metadata(1)))
	if inAgain.route(rec(0, 5, "")) != routeEnrich {
		t.Fatal("restarted incoming side must not skip again after passing the marker")
	}
	// A move back while the incoming side has not passed the first marker
	// yet keeps skipping until it, then stops at the second.
	back := newHandoff(HandoffParams{ID: "m2", To: "edge"}, committedAt("cefiot-handoff skip=m1"))
	for _, tc := range []struct {
		m    *kafka.Message
		want route
	}{{rec(0, 0, ""), routePass}, {rec(0, 1, "m1"), routePass}, {rec(0, 2, ""), routeEnrich}, {rec(0, 3, "m2"), routePass}, {rec(0, 4, ""), routeDrop}} {
		if got := back.route(tc.m); got != tc.want {
			t.Fatalf("offset %d: route %d, want %d", tc.m.TopicPartition.Offset, got, tc.want)
		}
	}
}

func TestHandoffParamsNeedOneDirection(t *testing.T) {
	for _, p := range []map[string]string{
		{"handoff-id": "x"},
		{"handoff-id": "x", "handoff-to": "a", "handoff-from": "b"},
		{"input-topic": "a", "output-topic": "a"},
		{"input-topic": "a b"},
	} {
		if _, err := ParseWorkloadParams(p, WorkloadParams{}); err == nil {
			t.Errorf("%v: want an error", p)
		}
	}
}
