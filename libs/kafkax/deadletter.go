package kafkax

import (
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Headers of a dead-letter record. The record keeps the original key,
// value, timestamp and headers; these are added.
const (
	HeaderDLQReason    = "cefiot-dlq-reason"    // why the record was refused, for people
	HeaderDLQCode      = "cefiot-dlq-code"      // the reason as a short code (decode, too-large, ...)
	HeaderDLQStage     = "cefiot-dlq-stage"     // the service that refused it
	HeaderDLQTopic     = "cefiot-dlq-topic"     // where it was read
	HeaderDLQPartition = "cefiot-dlq-partition" //
	HeaderDLQOffset    = "cefiot-dlq-offset"    //
	HeaderDLQTime      = "cefiot-dlq-time"      // RFC 3339 time of the refusal
)

// DeadLetter builds the dead-letter copy of msg for topic.
func DeadLetter(msg *kafka.Message, topic, stage, code, reason string, now time.Time) *kafka.Message {
	src := ""
	if msg.TopicPartition.Topic != nil {
		src = *msg.TopicPartition.Topic
	}
	headers := append([]kafka.Header(nil), msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQCode, Value: []byte(code)},
		kafka.Header{Key: HeaderDLQStage, Value: []byte(stage)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(src)},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(msg.TopicPartition.Partition)))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(int64(msg.TopicPartition.Offset), 10))},
		kafka.Header{Key: HeaderDLQTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	)
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            msg.Key,
		Value:          msg.Value,
		Timestamp:      msg.Timestamp,
		Headers:        headers,
	}
}
