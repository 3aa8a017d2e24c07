package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// pollInterval is how often readiness and metadata are polled.
const pollInterval = 100 * time.Millisecond

// adminClient is an AdminClient whose librdkafka logs go to a slog.Logger at
// debug level instead of stderr (a plain AdminClient cannot redirect them,
// so it is derived from a producer that can).
type adminClient struct {
	*kafka.AdminClient
	producer *kafka.Producer
	logsDone chan struct{}
}

func newAdmin(conn kafkax.Conn, logger *slog.Logger) (*adminClient, error) {
	bootstrap := conn.Bootstrap
	p, err := kafka.NewProducer(conn.Config(map[string]any{
		"client.id":                "kafkalocal",
		"reconnect.backoff.ms":     20,
		"reconnect.backoff.max.ms": 250,
		"go.logs.channel.enable":   true,
	}))
	if err != nil {
		return nil, fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	a, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	c := &adminClient{AdminClient: a, producer: p, logsDone: make(chan struct{})}
	go func() {
		defer close(c.logsDone)
		for ev := range p.Logs() {
			logger.Debug("librdkafka", "tag", ev.Tag, "level", ev.Level, "msg", ev.Message)
		}
	}()
	return c, nil
}

// Close closes the client and waits for its log forwarding to end.
func (c *adminClient) Close() {
	c.AdminClient.Close()
	c.producer.Close()
	<-c.logsDone
}

// CreateTopic creates a topic on the cluster at bootstrap and waits until
// every partition has a leader. A topic that already exists is no error.
// partitions or rf of 0 or less take the broker defaults (num.partitions,
// default.replication.factor); configs are topic configs such as
// "retention.ms".
func CreateTopic(ctx context.Context, conn kafkax.Conn, name string, partitions, rf int, configs map[string]string) error {
	return createTopic(ctx, conn, name, partitions, rf, configs, slog.New(slog.DiscardHandler))
}

// CreateTopic is [CreateTopic] on this cluster.
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions, rf int, configs map[string]string) error {
	return createTopic(ctx, c.Conn(), name, partitions, rf, configs, c.logger)
}

func createTopic(ctx context.Context, conn kafkax.Conn, name string, partitions, rf int, configs map[string]string, logger *slog.Logger) error {
	adm, err := newAdmin(conn, logger)
	if err != nil {
		return fmt.Errorf("kafkalocal: create topic %q: %w", name, err)
	}
	defer adm.Close()

	spec := kafka.TopicSpecification{
		Topic:             name,
		NumPartitions:     partitions,
		ReplicationFactor: max(rf, 0), // 0 means the broker default
		Config:            configs,
	}
	if partitions <= 0 {
		spec.NumPartitions = -1
	}
	opTimeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		opTimeout = min(opTimeout, max(time.Until(dl), time.Second))
	}
	res, err := adm.CreateTopics(ctx, []kafka.TopicSpecification{spec}, kafka.SetAdminOperationTimeout(opTimeout))
	if err != nil {
		return fmt.Errorf("kafkalocal: create topic %q: %w", name, err)
	}
	created := false
	for _, r := range res {
		switch r.Error.Code() {
		case kafka.ErrNoError:
			created = true
		case kafka.ErrTopicAlreadyExists:
		default:
			return fmt.Errorf("kafkalocal: create topic %q: %w", name, r.Error)
		}
	}
	want := 0
	if created && partitions > 0 {
		want = partitions
	}
	if err := awaitTopic(ctx, adm, name, want); err != nil {
		return fmt.Errorf("kafkalocal: create topic %q: %w", name, err)
	}
	logger.Debug("topic ready", "topic", name, "created", created)
	return nil
}

// awaitTopic waits until the metadata shows topic with every partition led,
// and with want partitions when want > 0.
func awaitTopic(ctx context.Context, adm *adminClient, topic string, want int) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		last = topicReady(adm, topic, want)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for partition leaders: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

func topicReady(adm *adminClient, topic string, want int) error {
	md, err := adm.GetMetadata(&topic, false, 2000)
	if err != nil {
		return err
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return errors.New("topic not in metadata")
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return tm.Error
	}
	if len(tm.Partitions) == 0 || len(tm.Partitions) < want {
		return fmt.Errorf("%d of %d partitions in metadata", len(tm.Partitions), want)
	}
	for _, p := range tm.Partitions {
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.ID)
		}
	}
	return nil
}
