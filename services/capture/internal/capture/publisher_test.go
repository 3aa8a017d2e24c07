package capture

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cefiot/cefiot/libs/kafkax"
)

// TestRenewKeepsEveryFrameOnceAndInOrder: renewing the producer (new
// credentials) while frames are published loses none, sends none twice and
// keeps their order.
func TestRenewKeepsEveryFrameOnceAndInOrder(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "frames"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	conn := kafkax.Conn{Bootstrap: cluster.ListenAddrs()[0]}
	pub, err := newPublisher(conn, "frames", newMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const frames = 600
	topic := "frames"
	published := make(chan error, 1)
	go func() {
		for i := range frames {
			if err := pub.produce(ctx, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte(strconv.Itoa(i))}); err != nil {
				published <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let the renewals land between frames
			}
		}
		published <- pub.flush(ctx)
	}()
	for range 5 {
		if err := pub.renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}

	consumer, err := kafka.NewConsumer(kafkax.Config(conn, map[string]any{"group.id": "check", "auto.offset.reset": "earliest"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = consumer.Close() }()
	if err := consumer.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	for want := 0; want < frames; {
		m, err := consumer.ReadMessage(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d frames: %v", want, err)
		}
		if got := string(m.Value); got != fmt.Sprint(want) {
			t.Fatalf("frame %d is %s: lost, repeated or out of order", want, got)
		}
		want++
	}
}
