package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// checkpoint is the value of a checkpoint record: the next source offset to
// forward for one edge partition. Its key is checkpointKey.
type checkpoint struct {
	Site      string `json:"site"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Next      int64  `json:"next_offset"`
}

type sourcePartition struct {
	Topic     string
	Partition int32
}

func checkpointKey(site string, sp sourcePartition) string {
	return fmt.Sprintf("%s/%s/%d", site, sp.Topic, sp.Partition)
}

// loadCheckpoints reads the checkpoint topic of the cloud cluster to its end
// with read_committed and returns this site's next offsets. It must run after
// InitTransactions, which completes any transaction a previous instance left
// open, so that the end of the topic is stable.
func loadCheckpoints(ctx context.Context, bootstrap, topic, site string) (map[sourcePartition]int64, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"group.id":             "cefiot-bridge-checkpoint-reader",
		"enable.auto.commit":   false,
		"isolation.level":      "read_committed",
		"enable.partition.eof": true,
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint reader: %w", err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return nil, fmt.Errorf("checkpoint topic metadata: %w", err)
	}
	out := map[sourcePartition]int64{}
	var parts []kafka.TopicPartition
	remaining := map[int32]bool{}
	for _, p := range md.Topics[topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			return nil, fmt.Errorf("checkpoint watermarks of %s/%d: %w", topic, p.ID, err)
		}
		if high == 0 {
			continue
		}
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
		remaining[p.ID] = true
	}
	if len(parts) == 0 {
		return out, nil
	}
	if err := c.Assign(parts); err != nil {
		return nil, fmt.Errorf("assign checkpoint topic: %w", err)
	}
	for len(remaining) > 0 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ev := c.Poll(200)
		switch e := ev.(type) {
		case *kafka.Message:
			var cp checkpoint
			if err := json.Unmarshal(e.Value, &cp); err != nil {
				return nil, fmt.Errorf("checkpoint record at %d: %w", e.TopicPartition.Offset, err)
			}
			if cp.Site == site {
				out[sourcePartition{cp.Topic, cp.Partition}] = cp.Next
			}
		case kafka.PartitionEOF:
			delete(remaining, e.Partition)
		case kafka.Error:
			if e.IsFatal() {
				return nil, fmt.Errorf("read checkpoints: %w", e)
			}
		}
	}
	return out, nil
}

var errFenced = errors.New("fenced by a newer bridge instance")

// commitTimeout bounds a transaction commit.
const commitTimeout = 60 * time.Second
