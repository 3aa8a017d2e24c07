package enrich

// Handoff of enrich between sites while frames flow, with nothing lost and
// nothing enriched twice.
//
// The site whose Kafka cluster holds the input topic (the home site, the
// edge) writes a marker record into every partition of the input topic,
// in one transaction. The bridge forwards the input topic (and the markers
// in it) to the other site while a handoff is under way. The outgoing
// enrich processes every record before the marker and stops at it in each
// partition; the incoming enrich skips every record before the marker and
// processes everything after it. Because both cut at the same record of
// each partition, every record is enriched exactly once, by one side.
//
// The per-partition state lives in the metadata of the committed offsets,
// written in the same transaction as the records, so a restart at any
// moment continues where the last commit ended.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// metaPrefix starts the committed offset metadata of a handoff.
const metaPrefix = "cefiot-handoff"

// HandoffParams describe the handoff a workload takes part in.
type HandoffParams struct {
	ID   string // handoff-id
	To   string // handoff-to: this workload is outgoing, to that site
	From string // handoff-from: this workload is incoming, from that site
	// After (handoff-after) is an earlier incoming handoff whose marker
	// must still be passed first, if it has not been.
	After string
}

// partState is a partition's handoff state, kept in the committed offset's
// metadata as "cefiot-handoff skip=X passed=X stopped=Y written=Y".
type partState struct {
	skip    string // skip records until the marker with this id
	passed  string // last incoming marker passed
	stopped string // outgoing marker reached: consume nothing more
	written string // markers with this id were written (home side)
}

func parsePartState(meta *string) partState {
	var s partState
	if meta == nil || !strings.HasPrefix(*meta, metaPrefix) {
		return s
	}
	for _, f := range strings.Fields(strings.TrimPrefix(*meta, metaPrefix)) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "skip":
			s.skip = v
		case "passed":
			s.passed = v
		case "stopped":
			s.stopped = v
		case "written":
			s.written = v
		}
	}
	return s
}

func (s partState) String() string {
	var b strings.Builder
	b.WriteString(metaPrefix)
	for _, kv := range [][2]string{{"skip", s.skip}, {"passed", s.passed}, {"stopped", s.stopped}, {"written", s.written}} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + "=" + kv[1])
		}
	}
	return b.String()
}

// route says what to do with a consumed record.
type route int

const (
	routeEnrich route = iota // a frame to enrich
	routePass                // consumed but not enriched (skipped, or a marker)
	routeDrop                // after this enrich's stop marker: not consumed
)

// handoff tracks the per-partition state of one enrich run.
type handoff struct {
	params HandoffParams
	parts  map[int32]*partState
}

// newHandoff builds the state from the committed offsets' metadata and the
// workload's params.
func newHandoff(p HandoffParams, committed []kafka.TopicPartition) *handoff {
	h := &handoff{params: p, parts: map[int32]*partState{}}
	for _, tp := range committed {
		s := parsePartState(tp.Metadata)
		skipUntil := p.After
		if p.From != "" {
			skipUntil = p.ID
		}
		if skipUntil != "" && s.passed != skipUntil && s.skip == "" {
			s.skip = skipUntil
		}
		h.parts[tp.Partition] = &s
	}
	return h
}

// needsMarkers reports whether the home side still has to write the markers
// of this handoff.
func (h *handoff) needsMarkers() bool {
	if h.params.ID == "" {
		return false
	}
	for _, s := range h.parts {
		if s.written != h.params.ID {
			return true
		}
	}
	return false
}

func (h *handoff) markersWritten() {
	for _, s := range h.parts {
		s.written = h.params.ID
	}
}

// stopped reports whether partition p reached the outgoing marker.
func (h *handoff) stopped(p int32) bool {
	s := h.parts[p]
	return s != nil && h.params.To != "" && s.stopped == h.params.ID
}

// finished reports whether every partition reached the outgoing marker.
func (h *handoff) finished() bool {
	if h.params.To == "" || len(h.parts) == 0 {
		return false
	}
	for p := range h.parts {
		if !h.stopped(p) {
			return false
		}
	}
	return true
}

// route classifies msg and advances the partition's state.
func (h *handoff) route(msg *kafka.Message) route {
	p := msg.TopicPartition.Partition
	s := h.parts[p]
	if s == nil {
		s = &partState{}
		h.parts[p] = s
	}
	if h.stopped(p) {
		return routeDrop
	}
	id, isMarker := kafkax.Header(msg, pipeline.HeaderHandoff)
	if !isMarker {
		if s.skip != "" {
			return routePass
		}
		return routeEnrich
	}
	switch {
	case s.skip != "" && id == s.skip:
		s.passed, s.skip = id, ""
	case h.params.To != "" && id == h.params.ID:
		s.stopped = id
	}
	return routePass
}

// metadata returns the committed-offset metadata of partition p.
func (h *handoff) metadata(p int32) *string {
	s := h.parts[p]
	if s == nil || *s == (partState{}) {
		return nil
	}
	v := s.String()
	return &v
}

// waitForTopic waits until topic exists (a moved enrich reads a topic the
// bridge creates) and returns its partition count.
func waitForTopic(ctx context.Context, admin *kafka.AdminClient, topic string) (int, error) {
	for {
		n, err := kafkax.PartitionCount(admin, topic)
		if err == nil && n > 0 {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for input topic %s: %w (last: %v)", topic, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// assignInput assigns every partition of the input topic at its committed
// offset (no group membership: the scheduler guarantees one owner, so a
// failover does not wait for a consumer-group session to time out), writes
// the handoff markers when this is the home side, and returns the handoff
// state.
func (e *enricher) assignInput(ctx context.Context, consumer *kafka.Consumer, producer *kafka.Producer, topic string, partitions int, hp HandoffParams, home bool) (*handoff, error) {
	tps := make([]kafka.TopicPartition, partitions)
	for p := range tps {
		tps[p] = kafka.TopicPartition{Topic: &topic, Partition: int32(p)}
	}
	committed, err := consumer.Committed(tps, 30000)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", topic, err)
	}
	h := newHandoff(hp, committed)
	for i, tp := range committed {
		if tp.Offset < 0 {
			low, _, err := consumer.QueryWatermarkOffsets(topic, tp.Partition, 10000)
			if err != nil {
				return nil, fmt.Errorf("low watermark of %s/%d: %w", topic, tp.Partition, err)
			}
			committed[i].Offset = kafka.Offset(low)
		}
	}
	if home && h.needsMarkers() {
		if err := e.writeMarkers(ctx, consumer, producer, topic, committed, h); err != nil {
			if errors.Is(err, kafkax.ErrCallHung) {
				return nil, err
			}
			if aerr := kafkax.AbortTransaction(ctx, producer, txnCallTimeout); aerr != nil {
				e.logger.Warn("abort of the marker transaction not complete; the next InitTransactions completes it", "err", aerr)
			}
			return nil, err
		}
	}
	var assign []kafka.TopicPartition
	for _, tp := range committed {
		if !h.stopped(tp.Partition) {
			t := topic
			assign = append(assign, kafka.TopicPartition{Topic: &t, Partition: tp.Partition, Offset: tp.Offset})
		}
	}
	if err := consumer.Assign(assign); err != nil {
		return nil, fmt.Errorf("assign %s: %w", topic, err)
	}
	return h, nil
}

// writeMarkers writes the handoff marker into every partition of the input
// topic and records that in the committed metadata, in one transaction.
func (e *enricher) writeMarkers(ctx context.Context, consumer *kafka.Consumer, producer *kafka.Producer, topic string, at []kafka.TopicPartition, h *handoff) error {
	to := h.params.To
	if to == "" {
		to = e.cfg.Site
	}
	if err := producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin marker transaction: %w", err)
	}
	h.markersWritten()
	offsets := make([]kafka.TopicPartition, 0, len(at))
	for _, tp := range at {
		t := topic
		if err := kafkax.Produce(ctx, producer, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &t, Partition: tp.Partition},
			Value:          []byte("handoff " + h.params.ID + " to " + to),
			Headers:        []kafka.Header{{Key: pipeline.HeaderHandoff, Value: []byte(h.params.ID)}, {Key: pipeline.HeaderHandoffTo, Value: []byte(to)}},
		}); err != nil {
			return fmt.Errorf("write handoff marker: %w", err)
		}
		offsets = append(offsets, kafka.TopicPartition{Topic: &t, Partition: tp.Partition, Offset: tp.Offset, Metadata: h.metadata(tp.Partition)})
	}
	meta, err := consumer.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("group metadata: %w", err)
	}
	if err := kafkax.SendOffsetsToTransaction(ctx, producer, offsets, meta, txnCallTimeout); err != nil {
		return fmt.Errorf("send marker offsets: %w", err)
	}
	if err := kafkax.CommitTransaction(ctx, producer, txnCallTimeout, nil); err != nil {
		return fmt.Errorf("commit handoff markers: %w", err)
	}
	e.logger.Info("handoff markers written", "handoff", h.params.ID, "to", to, "topic", topic, "partitions", len(at))
	return nil
}

// handoffParams reads the handoff params of a workload.
func handoffParams(params map[string]string) HandoffParams {
	return HandoffParams{
		ID:    params[pipeline.ParamHandoffID],
		To:    params[pipeline.ParamHandoffTo],
		From:  params[pipeline.ParamHandoffFrom],
		After: params[pipeline.ParamHandoffAfter],
	}
}

// withTopics returns a copy of e reading from input and writing to output.
func (e *enricher) withTopics(input, output string) *enricher {
	c := *e
	c.cfg.InputTopic, c.cfg.OutputTopic = input, output
	return &c
}

// inputPartitions ensures the input topic (or, for an enrich moved here
// from another site, waits for the bridge to create it) and returns its
// partition count.
func (e *enricher) inputPartitions(ctx context.Context, movedHere bool) (int, error) {
	if !movedHere {
		return kafkax.EnsureTopic(ctx, e.cfg.Kafka(e.cfg.KafkaBootstrap), kafkax.TopicSpec{Name: e.cfg.InputTopic, Partitions: e.cfg.Partitions})
	}
	admin, err := kafka.NewAdminClient(kafkax.Config(e.cfg.Kafka(e.cfg.KafkaBootstrap), nil))
	if err != nil {
		return 0, fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close()
	return waitForTopic(ctx, admin, e.cfg.InputTopic)
}
