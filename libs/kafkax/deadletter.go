package kafkax

import (
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// DeadLetter builds the dead-letter copy of msg for topic.
func DeadLetter(msg *kafka.Message, topic, stage, code, reason string, now time.Time) *kafka.Message {
	src := ""
	if msg.TopicPartition.Topic != nil {
		src = *msg.TopicPartition.Topic
	}
	headers := append([]kafka.Header(nil), msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: pipeline.HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: pipeline.HeaderDLQCode, Value: []byte(code)},
		kafka.Header{Key: pipeline.HeaderDLQStage, Value: []byte(stage)},
		kafka.Header{Key: pipeline.HeaderDLQTopic, Value: []byte(src)},
		kafka.Header{Key: pipeline.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(msg.TopicPartition.Partition)))},
		kafka.Header{Key: pipeline.HeaderDLQOffset, Value: []byte(strconv.FormatInt(int64(msg.TopicPartition.Offset), 10))},
		kafka.Header{Key: pipeline.HeaderDLQTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	)
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            msg.Key,
		Value:          msg.Value,
		Timestamp:      msg.Timestamp,
		Headers:        headers,
	}
}
