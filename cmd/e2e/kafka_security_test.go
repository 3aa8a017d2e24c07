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
//   - a revoked board of site "other" is refused on its open connection, on
//     a new one and after its site's grants are applied again, while the
//     site's other board goes on; a revoked site is refused everywhere;
//   - in an edge cluster that sites share, a site's bridge reads the topics
//     under its own prefix, in its own groups, and nothing of another
//     site's;
//   - the sink may not write a site's topics; at the edge, capture may not
//     read frames.raw.
func TestKafkaRefusesStrangersAndOtherSites(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	site := func(name string) sitepki.Site {
		s, err := sitepki.MakeWithBoards(filepath.Join(dir, "pki", name), name, []string{"board-1", "board-2"})
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
	otherGrants := append(kafkaacl.CloudSite("other"), kafkaacl.CloudSite("other", "board-1", "board-2")...)
	if err := cloudKafka.Grant(ctx, append(grants, otherGrants...)); err != nil {
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

	otherTopic := pipeline.CloudTopic("other", pipeline.TopicFramesEnriched)
	t.Run("a stolen board is locked out, open connections included, the site's other boards go on", func(t *testing.T) {
		board1, board2 := as(cloudKafka, other, access.Node("board-1")), as(cloudKafka, other, access.Node("board-2"))
		lockedOut := writeUntilRefused(ctx, t, board1, otherTopic, func() error {
			return cloudKafka.RevokeNode(ctx, "other", "board-1")
		})
		t.Logf("board-1 locked out %v after its revocation, on its open connection", lockedOut.Round(time.Millisecond))
		if err := produceOne(ctx, board1, otherTopic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("board-1 on a new connection: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if err := initTransactions(ctx, board1, pipeline.BridgeTransactionalID("other", "bridge")); !isCode(err, kafka.ErrTransactionalIDAuthorizationFailed) {
			t.Errorf("board-1 taking its site's transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
		}
		// Applying the site's grants again does not readmit it.
		if err := cloudKafka.Grant(ctx, otherGrants); err != nil {
			t.Fatal(err)
		}
		if err := produceOne(ctx, board1, otherTopic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("board-1 after the site's grants were applied again: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if err := produceOne(ctx, board2, otherTopic); err != nil {
			t.Errorf("board-2 after board-1's revocation: %v", err)
		}
		if err := initTransactions(ctx, board2, pipeline.BridgeTransactionalID("other", "bridge")); err != nil {
			t.Errorf("board-2 with its site's transactional id: %v", err)
		}
	})

	t.Run("a revoked site is locked out, open connections included", func(t *testing.T) {
		lockedOut := writeUntilRefused(ctx, t, as(cloudKafka, other, bridge), otherTopic, func() error {
			return cloudKafka.RevokeSite(ctx, "other")
		})
		t.Logf("site other locked out %v after the revocation, on its open connection", lockedOut.Round(time.Millisecond))
		if err := produceOne(ctx, as(cloudKafka, other, access.Node("board-2")), otherTopic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("site other's board-2 after its site's revocation: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		// Every other site is untouched.
		if err := produceOne(ctx, as(cloudKafka, edge, bridge), edgeTopic); err != nil {
			t.Errorf("site edge after site other's revocation: %v", err)
		}
	})

	t.Run("sites sharing an edge cluster read only under their own prefix", func(t *testing.T) {
		owner := site("shared-edge")
		shared := kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "shared-edge", TLS: owner.KafkaTLS(edge, other)})
		if err := shared.Grant(ctx, append(kafkaacl.SharedEdgeBridge("edge", pipeline.SharedEdgePrefix("edge")), kafkaacl.SharedEdgeBridge("other", pipeline.SharedEdgePrefix("other"))...)); err != nil {
			t.Fatal(err)
		}
		mine, theirs := pipeline.SharedEdgePrefix("other")+pipeline.TopicFramesEnriched, pipeline.SharedEdgePrefix("edge")+pipeline.TopicFramesEnriched
		for _, topic := range []string{mine, theirs} {
			if err := shared.CreateTopic(ctx, topic, 1, 1, nil); err != nil {
				t.Fatal(err)
			}
			if err := produceOne(ctx, shared.Conn(), topic); err != nil {
				t.Fatal(err)
			}
		}
		otherBridge := as(shared, other, bridge)
		group := pipeline.BridgePrefix("other") + "probe"
		if err := consumeOne(ctx, otherBridge, mine, group); err != nil {
			t.Errorf("site other's bridge reading %s: %v", mine, err)
		}
		if err := consumeOne(ctx, otherBridge, theirs, group); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("site other's bridge reading %s: %v, want TOPIC_AUTHORIZATION_FAILED", theirs, err)
		}
		if err := produceOne(ctx, otherBridge, mine); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("site other's bridge writing %s: %v, want TOPIC_AUTHORIZATION_FAILED (a bridge only reads at the edge)", mine, err)
		}
		if err := consumeOne(ctx, otherBridge, mine, "probe"); !isCode(err, kafka.ErrGroupAuthorizationFailed) {
			t.Errorf("site other's bridge in a group not its own: %v, want GROUP_AUTHORIZATION_FAILED", err)
		}
	})

	t.Run("stages have only their rights", func(t *testing.T) {
		if err := produceOne(ctx, as(cloudKafka, cloud, access.Worker(pipeline.KindSink)), edgeTopic); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
			t.Errorf("the sink writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", edgeTopic, err)
		}
		if err := consumeOne(ctx, as(edgeKafka, edge, access.Worker(pipeline.KindCapture)), pipeline.TopicFramesRaw, "probe"); !isCode(err, kafka.ErrTopicAuthorizationFailed, kafka.ErrGroupAuthorizationFailed) {
			t.Errorf("capture reading %s: %v, want an authorization error", pipeline.TopicFramesRaw, err)
		}
		if err := produceOne(ctx, as(edgeKafka, edge, access.Worker(pipeline.KindCapture)), pipeline.TopicFramesRaw); err != nil {
			t.Errorf("capture writing %s: %v", pipeline.TopicFramesRaw, err)
		}
	})
}

// writeUntilRefused writes to topic as conn with one producer (one
// connection), revokes conn's rights while that connection is open, and
// returns how long after the revocation the writes were refused; it fails
// the test if they go on for 60 s.
func writeUntilRefused(ctx context.Context, t *testing.T, conn kafkax.Conn, topic string, revoke func() error) time.Duration {
	t.Helper()
	p, err := kafka.NewProducer(conn.Config(map[string]any{"message.timeout.ms": 15000}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func() error {
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
	if err := send(); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	start := time.Now()
	if err := revoke(); err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < 60*time.Second {
		err := send()
		if isCode(err, kafka.ErrTopicAuthorizationFailed) {
			return time.Since(start)
		}
		if err != nil {
			t.Fatalf("after the revocation: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		time.Sleep(100 * time.Millisecond) // the next attempt; no event to wait for
	}
	t.Fatal("still writing 60 s after the revocation")
	return 0
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
func consumeOne(ctx context.Context, conn kafkax.Conn, topic, group string) error {
	c, err := kafka.NewConsumer(conn.Config(map[string]any{"group.id": group, "auto.offset.reset": "earliest"}))
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
