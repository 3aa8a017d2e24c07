// Package kafkax holds the Kafka plumbing the services share: client
// configuration, topic creation, header helpers and a reachability check.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// Conn is how a client reaches a Kafka cluster: its bootstrap servers and,
// unless the process runs with -insecure-plaintext, the client's key pair
// and the cluster's trust bundle (mutual TLS; the broker authorizes the
// certificate's identity, see libs/kafkaacl).
type Conn struct {
	Bootstrap string
	TLS       *tlsx.Files // nil: plaintext
}

func (c Conn) String() string { return c.Bootstrap }

// Config builds a librdkafka configuration for the cluster with the given
// overrides.
func (c Conn) Config(kv map[string]any) *kafka.ConfigMap { return Config(c, kv) }

// Config builds a librdkafka configuration for c with the given overrides.
func Config(c Conn, kv map[string]any) *kafka.ConfigMap {
	cm := kafka.ConfigMap{
		"bootstrap.servers":       c.Bootstrap,
		"client.dns.lookup":       "use_all_dns_ips",
		"socket.keepalive.enable": true,
		"log.connection.close":    false,
	}
	if c.TLS != nil {
		cm["security.protocol"] = "ssl"
		cm["ssl.certificate.location"] = c.TLS.Cert
		cm["ssl.key.location"] = c.TLS.Key
		cm["ssl.ca.location"] = c.TLS.CA
		// Brokers' certificates name the hosts clients dial.
		cm["ssl.endpoint.identification.algorithm"] = "https"
	}
	for k, v := range kv {
		cm[k] = v
	}
	return &cm
}

// WaitReachable returns nil once the cluster answers a metadata request, or
// an error naming the servers when it does not before ctx ends.
func WaitReachable(ctx context.Context, c Conn) error {
	bootstrap := c.Bootstrap
	admin, err := kafka.NewAdminClient(Config(c, nil))
	if err != nil {
		return fmt.Errorf("kafka admin client for %s: %w", bootstrap, err)
	}
	defer admin.Close()
	var lastErr error
	for {
		md, err := admin.GetMetadata(nil, false, 2000)
		if err == nil && len(md.Brokers) > 0 {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka at %s does not answer: %w (last error: %v)", bootstrap, ctx.Err(), lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int // 0 or less: the broker default
	Configs           map[string]string
}

// EnsureTopic creates the topic unless it exists, and returns its partition
// count (the existing one when it was already there).
func EnsureTopic(ctx context.Context, c Conn, spec TopicSpec) (int, error) {
	admin, err := kafka.NewAdminClient(Config(c, nil))
	if err != nil {
		return 0, fmt.Errorf("kafka admin client for %s: %w", c, err)
	}
	defer admin.Close()
	return EnsureTopicWith(ctx, admin, spec)
}

// EnsureTopicWith is EnsureTopic with an existing admin client.
func EnsureTopicWith(ctx context.Context, admin *kafka.AdminClient, spec TopicSpec) (int, error) {
	if n, err := PartitionCount(admin, spec.Name); err == nil {
		return n, nil
	}
	rf := spec.ReplicationFactor
	if rf <= 0 {
		rf = -1
	}
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic: spec.Name, NumPartitions: spec.Partitions, ReplicationFactor: rf, Config: spec.Configs,
	}})
	if err != nil {
		return 0, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return 0, fmt.Errorf("create topic %s: %w", spec.Name, r.Error)
		}
	}
	// Metadata can lag the creation by a moment; wait until it shows.
	for {
		n, err := PartitionCount(admin, spec.Name)
		if err == nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("topic %s created but not visible: %w", spec.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrNoTopic means the topic does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// PartitionCount returns the number of partitions of topic.
func PartitionCount(admin *kafka.AdminClient, topic string) (int, error) {
	md, err := admin.GetMetadata(&topic, false, 5000)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart || t.Error.Code() == kafka.ErrUnknownTopic || len(t.Partitions) == 0 {
		return 0, fmt.Errorf("%s: %w", topic, ErrNoTopic)
	}
	if t.Error.Code() != kafka.ErrNoError {
		return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
	}
	return len(t.Partitions), nil
}

// TopicIDs returns the topic id of each of names that exists (a topic
// deleted and created again under its name has a new id). A name that does
// not exist is left out.
func TopicIDs(ctx context.Context, admin *kafka.AdminClient, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	if len(names) == 0 {
		return out, nil
	}
	var opts []kafka.DescribeTopicsAdminOption
	if deadline, ok := ctx.Deadline(); ok {
		opts = append(opts, kafka.SetAdminRequestTimeout(max(time.Until(deadline), time.Millisecond)))
	}
	res, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames(names), opts...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	for _, d := range res.TopicDescriptions {
		if d.Error.Code() == kafka.ErrNoError {
			out[d.Name] = d.TopicID.String()
		}
	}
	return out, nil
}

// Header returns the value of the first header named key.
func Header(m *kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// SetHeaders returns a copy of headers in which each key of set appears
// once, with its value from set (in set's order, after the others): the
// stage that owns a header sets it, whatever an earlier stage or a hostile
// producer put there.
func SetHeaders(headers []kafka.Header, set ...kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(headers)+len(set))
	for _, h := range headers {
		owned := false
		for _, s := range set {
			owned = owned || s.Key == h.Key
		}
		if !owned {
			out = append(out, h)
		}
	}
	return append(out, set...)
}

// Where formats a record's position for logs and errors.
func Where(m *kafka.Message) string {
	tp := m.TopicPartition
	topic := ""
	if tp.Topic != nil {
		topic = *tp.Topic
	}
	return fmt.Sprintf("%s/%d@%d", topic, tp.Partition, tp.Offset)
}
