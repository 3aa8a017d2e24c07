package kafkalocal_test

// These tests run real Kafka brokers from the jars fetched by
// scripts/fetch-kafka.sh. They are skipped when the jars are missing, unless
// CEFIOT_REQUIRE_KAFKA=1. They wait for events (metadata, delivery reports,
// fetched records), never for fixed times.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
)

const testTimeout = 3 * time.Minute

func TestSingleBroker(t *testing.T) {
	c := kafkatest.StartForTest(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	if nodes := c.Nodes(); len(nodes) != 1 || !nodes[0].Running || nodes[0].ID != 1 {
		t.Fatalf("nodes = %+v", nodes)
	}
	if got := brokerIDs(ctx, t, c.BootstrapServers()); !slices.Equal(got, []int{1}) {
		t.Fatalf("brokers in metadata = %v, want [1]", got)
	}

	const topic = "frames"
	if err := c.CreateTopic(ctx, topic, 2, 1, map[string]string{"retention.ms": "3600000"}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: the topic exists already.
	if err := kafkalocal.CreateTopic(ctx, c.Conn(), topic, 2, 1, nil); err != nil {
		t.Fatalf("second CreateTopic: %v", err)
	}

	// Larger than Kafka's default 1 MiB limit: the cluster takes 16 MiB.
	value := bytes.Repeat([]byte("frame "), (2<<20)/6)
	p := newProducer(t, c.BootstrapServers())
	m := produce(ctx, t, p, topic, 1, "cam-1", value)

	got := consumeGroup(ctx, t, c.BootstrapServers(), topic, 1)
	if string(got[0].Key) != "cam-1" || !bytes.Equal(got[0].Value, value) {
		t.Fatalf("consumed key %q, %d bytes; want cam-1, %d bytes", got[0].Key, len(got[0].Value), len(value))
	}
	if got[0].TopicPartition.Partition != m.TopicPartition.Partition || got[0].TopicPartition.Offset != m.TopicPartition.Offset {
		t.Fatalf("consumed %v, produced %v", got[0].TopicPartition, m.TopicPartition)
	}

	// A clean stop and restart keeps the data.
	if err := c.StopBroker(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if c.Nodes()[0].Running {
		t.Fatal("node 1 still running after StopBroker")
	}
	begin := time.Now()
	if err := c.StartBroker(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 1 restarted in %v", time.Since(begin).Round(time.Millisecond))
	if got := readPartition(ctx, t, c.BootstrapServers(), topic, 1, 1); !bytes.Equal(got[0].Value, value) {
		t.Fatal("record lost across restart")
	}
}

func TestStartFailureShowsBrokerLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cfg := kafkalocal.ClusterConfig{
		Name:    "broken",
		BaseDir: t.TempDir(),
		LibsDir: kafkatest.Libs(t),
		JVMOpts: []string{"-Xmx1zz"}, // the broker JVM refuses to start
	}
	_, err := kafkalocal.Start(ctx, cfg, kafkatest.Logger(t))
	if err == nil {
		t.Fatal("Start succeeded with a broken JVM flag")
	}
	t.Logf("start error (expected): %v", err)
	for _, want := range []string{"node 1 exited while starting", "broker.log", "Invalid maximum heap size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestRestartFromBaseDir(t *testing.T) {
	cfg := kafkalocal.ClusterConfig{
		Name:    "restart",
		Brokers: 1,
		BaseDir: t.TempDir(),
		LibsDir: kafkatest.Libs(t),
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	logger := kafkatest.Logger(t)

	c, err := kafkalocal.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	id := c.ClusterID()
	createErr := c.CreateTopic(ctx, "kept", 1, 1, nil)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if createErr != nil {
		t.Fatal(createErr)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Same BaseDir, new free ports: same cluster, same topics.
	c, err = kafkalocal.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	if c.ClusterID() != id {
		t.Fatalf("cluster id %s after restart, want %s", c.ClusterID(), id)
	}
	adm := newAdmin(t, c.BootstrapServers())
	md, err := adm.GetMetadata(nil, true, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.Topics["kept"]; !ok {
		t.Fatalf("topic lost across restart; topics: %v", md.Topics)
	}
}

func TestThreeBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 3-broker cluster test in -short mode")
	}
	c := kafkatest.StartForTest(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	bootstrap := c.BootstrapServers()

	if got := brokerIDs(ctx, t, bootstrap); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("brokers in metadata = %v, want [1 2 3]", got)
	}

	// Broker defaults: RF 3 and min.insync.replicas 2.
	const topic = "events"
	if err := c.CreateTopic(ctx, topic, 3, 0, nil); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, bootstrap)
	tm := topicMetadata(t, adm, topic)
	if len(tm.Partitions) != 3 {
		t.Fatalf("%d partitions, want 3", len(tm.Partitions))
	}
	for _, p := range tm.Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d replicas %v, want 3", p.ID, p.Replicas)
		}
	}
	if got := topicConfig(ctx, t, adm, topic, "min.insync.replicas"); got != "2" {
		t.Fatalf("min.insync.replicas = %q, want 2", got)
	}

	p := newProducer(t, bootstrap)
	produce(ctx, t, p, topic, 0, "k", []byte("before"))

	// Crash the leader of partition 0: acks=all still succeeds with the
	// two remaining in-sync replicas.
	leader := int(tm.Partitions[0].Leader)
	if tm.Partitions[0].ID != 0 {
		t.Fatalf("unexpected partition order %+v", tm.Partitions)
	}
	if err := c.KillBroker(leader); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	produce(ctx, t, p, topic, 0, "k", []byte("during"))
	t.Logf("acks=all produce with node %d killed took %v", leader, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	if err := c.StartBroker(ctx, leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d restarted in %v", leader, time.Since(begin).Round(time.Millisecond))
	awaitFullISR(ctx, t, adm, topic)
	produce(ctx, t, p, topic, 0, "k", []byte("after"))

	var values []string
	for _, m := range readPartition(ctx, t, bootstrap, topic, 0, 3) {
		values = append(values, string(m.Value))
	}
	if want := []string{"before", "during", "after"}; !slices.Equal(values, want) {
		t.Fatalf("partition 0 holds %q, want %q", values, want)
	}
}

// clientConfig is a client configuration whose librdkafka logs are dropped
// (connection errors to a killed broker are expected here).
func clientConfig(bootstrap string, extra kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{
		"bootstrap.servers":      bootstrap,
		"go.logs.channel.enable": true,
	}
	for k, v := range extra {
		cm[k] = v
	}
	return &cm
}

// drainLogs discards a client's log events until Close closes the channel.
func drainLogs(ch chan kafka.LogEvent) {
	go func() {
		for range ch {
		}
	}()
}

func newAdmin(t *testing.T, bootstrap string) *kafka.AdminClient {
	t.Helper()
	p, err := kafka.NewProducer(clientConfig(bootstrap, nil))
	if err != nil {
		t.Fatal(err)
	}
	drainLogs(p.Logs())
	adm, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close(); p.Close() })
	return adm
}

func newProducer(t *testing.T, bootstrap string) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(clientConfig(bootstrap, kafka.ConfigMap{
		"acks":               "all",
		"enable.idempotence": true,
		"message.max.bytes":  kafkalocal.MaxMessageBytes,
		"message.timeout.ms": 120000,
		"linger.ms":          0,
	}))
	if err != nil {
		t.Fatal(err)
	}
	drainLogs(p.Logs())
	t.Cleanup(p.Close)
	return p
}

// produce sends one record and waits for its delivery report.
func produce(ctx context.Context, t *testing.T, p *kafka.Producer, topic string, partition int32, key string, value []byte) *kafka.Message {
	t.Helper()
	delivered := make(chan kafka.Event, 1)
	err := p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition},
		Key:            []byte(key),
		Value:          value,
	}, delivered)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	select {
	case ev := <-delivered:
		m := ev.(*kafka.Message)
		if m.TopicPartition.Error != nil {
			t.Fatalf("delivery to %s: %v", topic, m.TopicPartition.Error)
		}
		return m
	case <-ctx.Done():
		t.Fatalf("no delivery report for %s: %v", topic, ctx.Err())
		return nil
	}
}

// consumeGroup reads n records from topic as a new consumer group.
func consumeGroup(ctx context.Context, t *testing.T, bootstrap, topic string, n int) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(clientConfig(bootstrap, kafka.ConfigMap{
		"group.id":          fmt.Sprintf("test-%d", time.Now().UnixNano()),
		"auto.offset.reset": "earliest",
	}))
	if err != nil {
		t.Fatal(err)
	}
	drainLogs(c.Logs())
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	return readN(ctx, t, c, n)
}

// readPartition reads n records of one partition from its start, without
// a consumer group.
func readPartition(ctx context.Context, t *testing.T, bootstrap, topic string, partition int32, n int) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(clientConfig(bootstrap, kafka.ConfigMap{
		"group.id":           "unused",
		"enable.auto.commit": false,
	}))
	if err != nil {
		t.Fatal(err)
	}
	drainLogs(c.Logs())
	defer c.Close()
	err = c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.OffsetBeginning}})
	if err != nil {
		t.Fatal(err)
	}
	return readN(ctx, t, c, n)
}

func readN(ctx context.Context, t *testing.T, c *kafka.Consumer, n int) []*kafka.Message {
	t.Helper()
	var out []*kafka.Message
	for len(out) < n {
		m, err := c.ReadMessage(time.Second)
		var kerr kafka.Error
		switch {
		case err == nil:
			out = append(out, m)
			continue
		case errors.As(err, &kerr) && kerr.IsTimeout():
		case errors.As(err, &kerr) && !kerr.IsFatal():
			t.Logf("consumer: %v", err)
		default:
			t.Fatalf("consume: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", len(out), n, ctx.Err())
		}
	}
	return out
}

func brokerIDs(ctx context.Context, t *testing.T, bootstrap string) []int {
	t.Helper()
	res, err := newAdmin(t, bootstrap).DescribeCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, n := range res.Nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	return ids
}

func topicMetadata(t *testing.T, adm *kafka.AdminClient, topic string) kafka.TopicMetadata {
	t.Helper()
	md, err := adm.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	tm := md.Topics[topic]
	slices.SortFunc(tm.Partitions, func(a, b kafka.PartitionMetadata) int { return int(a.ID - b.ID) })
	return tm
}

func topicConfig(ctx context.Context, t *testing.T, adm *kafka.AdminClient, topic, key string) string {
	t.Helper()
	res, err := adm.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("describe configs of %s: %v", topic, res)
	}
	return res[0].Config[key].Value
}

// awaitFullISR waits until every partition of topic has all replicas in
// sync.
func awaitFullISR(ctx context.Context, t *testing.T, adm *kafka.AdminClient, topic string) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		md, err := adm.GetMetadata(&topic, false, 5000)
		if err == nil && slices.IndexFunc(md.Topics[topic].Partitions, func(p kafka.PartitionMetadata) bool {
			return len(p.Isrs) != len(p.Replicas)
		}) < 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("ISR of %s not full: %v (metadata error %v)", topic, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
