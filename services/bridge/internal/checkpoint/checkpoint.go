// Package checkpoint is the bridge's record of how far each edge partition
// has been forwarded. Checkpoints live in a compacted topic of the CLOUD
// cluster (one per site) and are written in the same Kafka transaction as the
// forwarded records, so a committed record and its checkpoint appear
// together or not at all.
//
// A checkpoint record has the key "<site>/<topic>/<partition>" and a JSON
// value ([Record]): the next source offset to forward, the transactional id
// that wrote it, and the running gap totals of the partition.
//
// [Load] reads the checkpoints only once every transaction that was open
// when it started has been decided (the topic's last stable offset has
// reached the high watermark seen at the start), so a transaction of another
// bridge workload of the same site cannot hide newer checkpoints.
package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/leasebound"
	"github.com/cefiot/cefiot/libs/pipeline"
)

// Partition names a source (edge) partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Record is the value of a checkpoint record.
type Record struct {
	Site      string `json:"site"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Next is the next source offset to forward.
	Next int64 `json:"next_offset"`
	// Owner is the transactional id of the bridge that wrote the record.
	Owner string `json:"owner,omitempty"`
	// GapOffsets and Gaps are the running totals of offsets lost to edge
	// retention on this partition and of gap ranges.
	GapOffsets int64 `json:"gap_offsets,omitempty"`
	Gaps       int64 `json:"gaps,omitempty"`
	// Epoch counts the times the partition's offsets went back (a topic
	// recreated or truncated): Next is an offset of that epoch.
	Epoch int64 `json:"epoch,omitempty"`
	// TopicID is the edge topic's id (Kafka's, per topic): a topic deleted
	// and created again under its name has a new one, and its offsets start
	// again in a new epoch.
	TopicID string    `json:"topic_id,omitempty"`
	Time    time.Time `json:"time"`
}

// Key is the record key of a partition's checkpoint.
func Key(site string, p Partition) string {
	return fmt.Sprintf("%s/%s/%d", site, p.Topic, p.Partition)
}

// Message builds the checkpoint record for topic (the checkpoint topic).
func Message(topic *string, r Record) *kafka.Message {
	v, _ := json.Marshal(r) // plain struct: cannot fail
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: topic, Partition: 0},
		Key:            []byte(Key(r.Site, Partition{r.Topic, r.Partition})),
		Value:          v,
	}
}

// TopicConfig is the configuration of a checkpoint topic: compacted, with
// small segments so that compaction keeps loading fast.
var TopicConfig = map[string]string{
	"cleanup.policy":            "compact",
	"segment.bytes":             "16777216",
	"segment.ms":                "600000",
	"min.cleanable.dirty.ratio": "0.1",
}

// StableWait bounds how long Load waits for open transactions on the
// checkpoint topic to be decided; it exceeds the bridge's transaction
// timeout, after which the cloud cluster aborts a forgotten transaction.
const StableWait = 90 * time.Second

// Load returns the checkpoints of site in the checkpoint topic, by
// partition. It must run after the caller's InitTransactions, which decides
// the caller's own last transaction.
func Load(ctx context.Context, bootstrap kafkax.Conn, topic, site string) (map[Partition]Record, error) {
	admin, err := kafka.NewAdminClient(kafkax.Config(bootstrap, nil))
	if err != nil {
		return nil, fmt.Errorf("checkpoint admin client: %w", err)
	}
	defer admin.Close()
	tp := kafka.TopicPartition{Topic: &topic, Partition: 0}
	hw, err := endOffset(ctx, admin, tp, kafka.IsolationLevelReadUncommitted)
	if err != nil {
		return nil, err
	}
	out := map[Partition]Record{}
	if hw == 0 {
		return out, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, StableWait)
	defer cancel()
	for {
		lso, err := endOffset(waitCtx, admin, tp, kafka.IsolationLevelReadCommitted)
		if err != nil {
			return nil, fmt.Errorf("waiting for open transactions on %s to end: %w", topic, err)
		}
		if lso >= hw {
			break
		}
		select {
		case <-waitCtx.Done():
			return nil, fmt.Errorf("transactions on %s still open after %v (stable offset %d < %d)", topic, StableWait, lso, hw)
		case <-time.After(50 * time.Millisecond):
		}
	}

	c, err := kafka.NewConsumer(kafkax.Config(bootstrap, map[string]any{
		"group.id":             pipeline.BridgeCheckpointGroup(site),
		"enable.auto.commit":   false,
		"isolation.level":      "read_committed",
		"enable.partition.eof": true,
	}))
	if err != nil {
		return nil, fmt.Errorf("checkpoint reader: %w", err)
	}
	defer c.Close()
	tp.Offset = kafka.OffsetBeginning
	if err := c.Assign([]kafka.TopicPartition{tp}); err != nil {
		return nil, fmt.Errorf("assign %s: %w", topic, err)
	}
	deadline := time.Now().Add(StableWait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reading %s did not reach its end within %v", topic, StableWait)
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return nil, fmt.Errorf("read %s: %w", topic, e.TopicPartition.Error)
			}
			var r Record
			if err := json.Unmarshal(e.Value, &r); err != nil {
				return nil, fmt.Errorf("checkpoint record %s: %w", kafkax.Where(e), err)
			}
			if r.Site == site {
				out[Partition{r.Topic, r.Partition}] = r
			}
			if int64(e.TopicPartition.Offset)+1 >= hw {
				return out, nil
			}
		case kafka.PartitionEOF:
			if int64(e.Offset) >= hw {
				return out, nil
			}
		case kafka.Error:
			if e.IsFatal() {
				return nil, fmt.Errorf("read %s: %w", topic, e)
			}
		}
	}
}

func endOffset(ctx context.Context, admin *kafka.AdminClient, tp kafka.TopicPartition, iso kafka.IsolationLevel) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := admin.ListOffsets(rctx, map[kafka.TopicPartition]kafka.OffsetSpec{tp: kafka.LatestOffsetSpec},
		kafka.SetAdminIsolationLevel(iso))
	if err != nil {
		return 0, fmt.Errorf("end offset of %s: %w", *tp.Topic, err)
	}
	for _, r := range res.ResultInfos {
		if r.Error.Code() != kafka.ErrNoError {
			return 0, fmt.Errorf("end offset of %s: %w", *tp.Topic, r.Error)
		}
		return int64(r.Offset), nil
	}
	return 0, fmt.Errorf("end offset of %s: no answer", *tp.Topic)
}

// Fence makes sure the bridge with transactional id owner can no longer
// commit: it initialises a producer with that id, which aborts the owner's
// open transaction and bumps its epoch. The bridge calls it before it takes
// over partitions whose last checkpoint another workload wrote.
func Fence(ctx context.Context, bootstrap kafkax.Conn, owner string) error {
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{
		"transactional.id":       owner,
		"transaction.timeout.ms": 60000,
	}))
	if err != nil {
		return fmt.Errorf("fencing producer for %s: %w", owner, err)
	}
	defer p.Close()
	ictx, cancel := leasebound.CallContext(ctx, 60*time.Second)
	defer cancel()
	if err := p.InitTransactions(ictx); err != nil {
		return fmt.Errorf("fence %s: %w", owner, err)
	}
	return nil
}
