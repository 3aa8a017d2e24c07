package bridgeharness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
)

// CreateTopic creates a topic with partitions and configs.
func CreateTopic(ctx context.Context, bootstrap kafkax.Conn, topic string, partitions int, configs map[string]string) error {
	_, err := kafkax.EnsureTopic(ctx, bootstrap, kafkax.TopicSpec{Name: topic, Partitions: partitions, Configs: configs})
	return err
}

// Feeder produces numbered records to an edge topic with the idempotent
// producer (acks=all), spreading them over the partitions in turn. Each
// record has a key, two headers and an explicit timestamp, so a copy can be
// checked field by field.
type Feeder struct {
	p          *kafka.Producer
	topic      string
	partitions int32
	size       int
	seq        atomic.Int64
	delivered  atomic.Int64
	failed     atomic.Int64
	wg         sync.WaitGroup
	stop       chan struct{}
	stopOnce   sync.Once
}

// NewFeeder returns a feeder of records of size bytes.
func NewFeeder(bootstrap kafkax.Conn, topic string, partitions, size int) (*Feeder, error) {
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{
		"enable.idempotence": true, "acks": "all", "linger.ms": 5, "message.timeout.ms": 0,
		"message.max.bytes": 16 << 20, "batch.size": 1 << 20,
	}))
	if err != nil {
		return nil, err
	}
	f := &Feeder{p: p, topic: topic, partitions: int32(partitions), size: max(size, 16), stop: make(chan struct{})}
	go func() {
		for e := range p.Events() {
			if m, ok := e.(*kafka.Message); ok {
				if m.TopicPartition.Error != nil {
					f.failed.Add(1)
				} else {
					f.delivered.Add(1)
				}
			}
		}
	}()
	return f, nil
}

// Value builds the value of record seq: the sequence number, then filler.
func Value(seq int64, size int) []byte {
	v := make([]byte, size)
	binary.BigEndian.PutUint64(v, uint64(seq))
	for i := 8; i < size; i++ {
		v[i] = byte(seq + int64(i))
	}
	return v
}

// Produce sends n records now.
func (f *Feeder) Produce(n int) error {
	for range n {
		seq := f.seq.Add(1) - 1
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &f.topic, Partition: int32(seq % int64(f.partitions))},
			Key:            fmt.Appendf(nil, "key-%d", seq),
			Value:          Value(seq, f.size),
			Headers:        []kafka.Header{{Key: "seq", Value: fmt.Appendf(nil, "%d", seq)}, {Key: "origin", Value: []byte("feeder")}},
			Timestamp:      time.UnixMilli(1_700_000_000_000 + seq),
		}
		for {
			err := f.p.Produce(msg, nil)
			if err == nil {
				break
			}
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.Code() == kafka.ErrQueueFull {
				f.p.Flush(50)
				continue
			}
			return err
		}
	}
	return nil
}

// Run produces rate records per second in the background until Stop.
func (f *Feeder) Run(rate int) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		sent := 0
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			want := int(time.Since(start).Seconds() * float64(rate))
			if want > sent {
				_ = f.Produce(want - sent)
				sent = want
			}
		}
	}()
}

// Stop ends Run and waits until every record is delivered or failed.
func (f *Feeder) Stop(ctx context.Context) error {
	f.stopOnce.Do(func() { close(f.stop) })
	f.wg.Wait()
	return f.Flush(ctx)
}

// Flush waits until every record produced so far is delivered or failed.
func (f *Feeder) Flush(ctx context.Context) error {
	for f.p.Flush(200) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("feeder: %d records undelivered: %w", f.p.Len(), ctx.Err())
		}
	}
	return nil
}

// Close closes the producer.
func (f *Feeder) Close() { f.p.Close() }

// Sent, Delivered and Failed count records.
func (f *Feeder) Sent() int64      { return f.seq.Load() }
func (f *Feeder) Delivered() int64 { return f.delivered.Load() }
func (f *Feeder) Failed() int64    { return f.failed.Load() }

// Record is the part of a record the checker compares.
type Record struct {
	Offset    int64
	Key       string
	Digest    [32]byte // of the value
	Headers   string
	Timestamp int64
}

func (r Record) String() string {
	return fmt.Sprintf("@%d key=%s ts=%d", r.Offset, r.Key, r.Timestamp)
}

func toRecord(m *kafka.Message) Record {
	var h bytes.Buffer
	for _, x := range m.Headers {
		fmt.Fprintf(&h, "%s=%s;", x.Key, x.Value)
	}
	return Record{Offset: int64(m.TopicPartition.Offset), Key: string(m.Key), Digest: sha256.Sum256(m.Value), Headers: h.String(), Timestamp: m.Timestamp.UnixMilli()}
}

// ReadAll reads every partition of topic from the beginning to its end with
// read_committed and returns the records per partition in offset order.
func ReadAll(ctx context.Context, bootstrap kafkax.Conn, topic string) (map[int32][]Record, error) {
	c, err := kafka.NewConsumer(kafkax.Config(bootstrap, map[string]any{
		"group.id": "cefiot-bridge-check", "enable.auto.commit": false, "isolation.level": "read_committed",
		"enable.partition.eof": true, "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20,
	}))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return nil, err
	}
	t, ok := md.Topics[topic]
	if !ok || len(t.Partitions) == 0 {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	out := map[int32][]Record{}
	var assign []kafka.TopicPartition
	remaining := map[int32]bool{}
	for _, p := range t.Partitions {
		out[p.ID] = nil
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			return nil, err
		}
		if high == 0 {
			continue
		}
		assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
		remaining[p.ID] = true
	}
	if err := c.Assign(assign); err != nil {
		return nil, err
	}
	for len(remaining) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				continue
			}
			out[e.TopicPartition.Partition] = append(out[e.TopicPartition.Partition], toRecord(e))
		case kafka.PartitionEOF:
			delete(remaining, e.Partition)
		}
	}
	return out, nil
}

// Diff compares an edge topic with its cloud copy: every partition must hold
// the same records in the same order (offsets aside), each once. skip
// removes edge offsets known to be lost (gaps) per partition. It returns a
// description of the first differences, or "" when equal, and the number of
// records compared.
func Diff(edge, cloud map[int32][]Record, skip func(p int32, offset int64) bool) (string, int) {
	var b bytes.Buffer
	n := 0
	for _, p := range slices.Sorted(maps.Keys(edge)) {
		var want []Record
		for _, r := range edge[p] {
			if skip == nil || !skip(p, r.Offset) {
				want = append(want, r)
			}
		}
		got := cloud[p]
		n += len(want)
		seen := map[string]int{}
		for _, r := range got {
			seen[r.Key]++
		}
		dups := 0
		for _, c := range seen {
			if c > 1 {
				dups += c - 1
			}
		}
		if len(got) != len(want) || dups > 0 {
			fmt.Fprintf(&b, "partition %d: edge %d records, cloud %d (%d duplicates)\n", p, len(want), len(got), dups)
		}
		for i := range min(len(got), len(want)) {
			w, g := want[i], got[i]
			if w.Key != g.Key || w.Digest != g.Digest || w.Headers != g.Headers || w.Timestamp != g.Timestamp {
				fmt.Fprintf(&b, "partition %d record %d: edge %v, cloud %v\n", p, i, w, g)
				break
			}
		}
	}
	for p := range cloud {
		if _, ok := edge[p]; !ok && len(cloud[p]) > 0 {
			fmt.Fprintf(&b, "cloud partition %d has %d records the edge topic has no partition for\n", p, len(cloud[p]))
		}
	}
	return b.String(), n
}

// Count is the number of records in a read.
func Count(m map[int32][]Record) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// AwaitCopy waits until the cloud copy holds as many records as the edge
// topic (minus skip), then diffs them. It returns the diff ("" when equal)
// and the number of records.
func AwaitCopy(ctx context.Context, edgeBootstrap, cloudBootstrap kafkax.Conn, topic, cloudTopic string, skip func(int32, int64) bool) (string, int, error) {
	edge, err := ReadAll(ctx, edgeBootstrap, topic)
	if err != nil {
		return "", 0, fmt.Errorf("read edge %s: %w", topic, err)
	}
	want := 0
	for p, rs := range edge {
		for _, r := range rs {
			if skip == nil || !skip(p, r.Offset) {
				want++
			}
		}
	}
	var cloud map[int32][]Record
	for {
		cloud, err = ReadAll(ctx, cloudBootstrap, cloudTopic)
		if err == nil && Count(cloud) >= want {
			break
		}
		select {
		case <-ctx.Done():
			got := -1
			if cloud != nil {
				got = Count(cloud)
			}
			return "", 0, fmt.Errorf("cloud %s holds %d of %d records: %w (last error: %v)", cloudTopic, got, want, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
	d, n := Diff(edge, cloud, skip)
	return d, n, nil
}
