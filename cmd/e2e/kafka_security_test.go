package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// TestKafkaRefusesStrangersAndOtherSites attacks a cloud Kafka cluster and
// an edge one, secured as deployed (mutual TLS on every listener, the
// StandardAuthorizer, the ACLs of libs/kafkaacl), with real clients:
//
//   - a plaintext client and a client of an impostor CA that claims site
//     "edge" get no metadata;
//   - site "other"'s bridge, whose CA the cloud trusts, cannot write site
//     "edge"'s topics, cannot write its checkpoint (a forged checkpoint is
//     impossible, not just detected) and cannot initialize its
//     transactional id (the fencing attack), while it can write its own;
//   - the sink may not write a site's topics; at the edge, capture may not
//     read frames.raw.
func TestKafkaRefusesStrangersAndOtherSites(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	site := func(name string) sitepki.Site {
		s, err := sitepki.Make(filepath.Join(dir, "pki", name), name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	edge, other, cloud := site("edge"), site("other"), site("cloud")
	impostor, err := sitepki.Foreign(filepath.Join(dir, "pki", "impostor"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	cloudKafka := kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "cloud", TLS: cloud.KafkaTLS(edge, other)})
	edgeKafka := kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "edge", TLS: edge.KafkaTLS()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	grants := append(kafkaacl.Cloud("cloud"), kafkaacl.CloudSite("edge")...)
	if err := cloudKafka.Grant(ctx, append(grants, kafkaacl.CloudSite("other")...)); err != nil {
		t.Fatal(err)
	}
	if err := edgeKafka.Grant(ctx, kafkaacl.Edge("edge")); err != nil {
		t.Fatal(err)
	}
	edgeTopic := pipeline.CloudTopic("edge", pipeline.TopicFramesEnriched)
	for _, topic := range []string{edgeTopic, pipeline.CheckpointTopic("edge"), pipeline.CloudTopic("other", pipeline.TopicFramesEnriched)} {
		if err := cloudKafka.CreateTopic(ctx, topic, 1, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := edgeKafka.CreateTopic(ctx, pipeline.TopicFramesRaw, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	// as is a client of cluster c with component's key pair of s, trusting
	// the cluster's CA.
	as := func(c *kafkalocal.Cluster, s sitepki.Site, component string) kafkax.Conn {
		f := s.Files(component)
		return kafkax.Conn{Bootstrap: c.BootstrapServers(), TLS: &tlsx.Files{Cert: f.Cert, Key: f.Key, CA: c.Conn().TLS.CA}}
	}
	bridge := access.Worker(pipeline.KindBridge)

	t.Run("strangers get no metadata", func(t *testing.T) {
		for name, conn := range map[string]kafkax.Conn{
			"plaintext":   {Bootstrap: cloudKafka.BootstrapServers()},
			"impostor CA": as(cloudKafka, impostor, bridge),
		} {
			waitCtx, waitCancel := context.WithTimeout(ctx, 5*time.Second)
			err := kafkax.WaitReachable(waitCtx, conn)
			waitCancel()
			if err == nil {
				t.Errorf("%s: the cluster answered", name)
			}
		}
	})

	t.Run("another site cannot write, forge a checkpoint or fence", func(t *testing.T) {
		otherBridge := as(cloudKafka, other, bridge)
		for _, topic := range []string{edgeTopic, pipeline.CheckpointTopic("edge")} {
			if err := produceOne(ctx, otherBridge, topic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
				t.Errorf("site other's bridge writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
			}
		}
		if err := initTransactions(ctx, otherBridge, pipeline.BridgeTransactionalID("edge", "bridge")); !isCode(err, kafka.ErrTransactionalIDAuthorizationFailed) {
			t.Errorf("site other's bridge taking site edge's transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
		}
		// Its own names work: the refusals above are about the site.
		if err := produceOne(ctx, otherBridge, pipeline.CloudTopic("other", pipeline.TopicFramesEnriched)); err != nil {
			t.Errorf("site other's bridge writing its own topic: %v", err)
		}
		if err := initTransactions(ctx, otherBridge, pipeline.BridgeTransactionalID("other", "bridge")); err != nil {
			t.Errorf("site other's bridge with its own transactional id: %v", err)
		}
		if err := produceOne(ctx, as(cloudKafka, edge, bridge), edgeTopic); err != nil {
			t.Errorf("site edge's bridge writing its own topic: %v", err)
		}
	})

	t.Run("a revoked site is locked out, open connections included", func(t *testing.T) {
		// Site other's bridge writes with one producer (one connection)
		// while its site is revoked.
		p, err := kafka.NewProducer(as(cloudKafka, other, bridge).Config(map[string]any{"message.timeout.ms": 15000}))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		topic := pipeline.CloudTopic("other", pipeline.TopicFramesEnriched)
		send := func() error {
			dr := make(chan kafka.Event, 1)
			if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: []byte("x")}, dr); err != nil {
				return err
			}
			return (<-dr).(*kafka.Message).TopicPartition.Error
		}
		if err := send(); err != nil {
			t.Fatalf("before the revocation: %v", err)
		}
		start := time.Now()
		if err := cloudKafka.Revoke(ctx, kafkaacl.CloudSite("other")); err != nil {
			t.Fatal(err)
		}
		var lockedOut time.Duration
		for lockedOut == 0 && time.Since(start) < 60*time.Second {
			if err := send(); isCode(err, kafka.ErrTopicAuthorizationFailed) {
				lockedOut = time.Since(start)
			} else if err != nil {
				t.Fatalf("after the revocation: %v, want TOPIC_AUTHORIZATION_FAILED", err)
			} else {
				time.Sleep(100 * time.Millisecond) // the next attempt; no event to wait for
			}
		}
		if lockedOut == 0 {
			t.Fatal("site other still writes 60 s after its revocation")
		}
		t.Logf("site other locked out %v after the revocation, on its open connection", lockedOut.Round(time.Millisecond))
		// Every other site is untouched.
		if err := produceOne(ctx, as(cloudKafka, edge, bridge), edgeTopic); err != nil {
			t.Errorf("site edge after site other's revocation: %v", err)
		}
	})

	t.Run("stages have only their rights", func(t *testing.T) {
		if err := produceOne(ctx, as(cloudKafka, cloud, access.Worker(pipeline.KindSink)), edgeTopic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("the sink writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", edgeTopic, err)
		}
		if err := consumeOne(ctx, as(edgeKafka, edge, access.Worker(pipeline.KindCapture)), pipeline.TopicFramesRaw); !isCode(err, kafka.ErrTopicAuthorizationFailed, kafka.ErrGroupAuthorizationFailed) {
			t.Errorf("capture reading %s: %v, want an authorization error", pipeline.TopicFramesRaw, err)
		}
		if err := produceOne(ctx, as(edgeKafka, edge, access.Worker(pipeline.KindCapture)), pipeline.TopicFramesRaw); err != nil {
			t.Errorf("capture writing %s: %v", pipeline.TopicFramesRaw, err)
		}
	})
}

func isCode(err error, codes ...kafka.ErrorCode) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	for _, c := range codes {
		if ke.Code() == c {
			return true
		}
	}
	return false
}

// produceOne writes one record and returns the delivery's error.
func produceOne(ctx context.Context, conn kafkax.Conn, topic string) error {
	p, err := kafka.NewProducer(conn.Config(map[string]any{"message.timeout.ms": 15000}))
	if err != nil {
		return err
	}
	defer p.Close()
	dr := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: []byte("x")}, dr); err != nil {
		return err
	}
	select {
	case e := <-dr:
		return e.(*kafka.Message).TopicPartition.Error
	case <-ctx.Done():
		return ctx.Err()
	}
}

// initTransactions registers a transactional producer with id.
func initTransactions(ctx context.Context, conn kafkax.Conn, id string) error {
	p, err := kafka.NewProducer(conn.Config(map[string]any{"transactional.id": id}))
	if err != nil {
		return err
	}
	defer p.Close()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.InitTransactions(ictx)
}

// consumeOne reads topic from the start in a group of its own until a
// record or an error comes.
func consumeOne(ctx context.Context, conn kafkax.Conn, topic string) error {
	c, err := kafka.NewConsumer(conn.Config(map[string]any{"group.id": "probe", "auto.offset.reset": "earliest"}))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		return err
	}
	for ctx.Err() == nil {
		switch e := c.Poll(200).(type) {
		case kafka.Error:
			return e
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return e.TopicPartition.Error
			}
			return nil
		}
	}
	return ctx.Err()
}
