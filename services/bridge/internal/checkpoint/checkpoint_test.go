package checkpoint

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cefiot/cefiot/libs/kafkax"
)

const testTopic = "checkpoints"

// newCluster starts a fake Kafka cluster (kfake, the Kafka wire protocol in
// process) holding the checkpoint topic and returns its bootstrap servers.
func newCluster(t *testing.T) kafkax.Conn {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return kafkax.Conn{Bootstrap: strings.Join(c.ListenAddrs(), ",")}
}

// txnProducer returns an initialised transactional producer with id.
func txnProducer(ctx context.Context, t *testing.T, bootstrap kafkax.Conn, id string) *kafka.Producer {
	t.Helper()
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{
		"transactional.id":       id,
		"transaction.timeout.ms": 60000,
		"go.delivery.reports":    false, // nobody reads them; Flush would wait for them
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatalf("init transactions: %v", err)
	}
	return p
}

// writeTxn writes recs in one transaction and commits it (or aborts it).
func writeTxn(ctx context.Context, t *testing.T, p *kafka.Producer, commit bool, recs ...Record) {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	topic := testTopic
	for _, r := range recs {
		if err := p.Produce(Message(&topic, r), nil); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if commit {
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	} else if err := p.AbortTransaction(ctx); err != nil {
		t.Fatalf("abort: %v", err)
	}
}

func rec(site, topic string, part int32, next int64) Record {
	return Record{Site: site, Topic: topic, Partition: part, Next: next, Owner: "bridge-a", Time: time.Now().UTC()}
}

func TestLoadReturnsLatestCommittedPerPartition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	bootstrap := newCluster(t)
	p := txnProducer(ctx, t, bootstrap, "bridge-a")

	writeTxn(ctx, t, p, true, rec("door", "frames", 0, 5), rec("door", "frames", 1, 7), rec("gate", "frames", 0, 1000))
	writeTxn(ctx, t, p, true, rec("door", "frames", 0, 10), rec("door", "events", 0, 3))
	// Aborted: none of these may be seen.
	writeTxn(ctx, t, p, false, rec("door", "frames", 0, 99), rec("door", "frames", 2, 42))

	got, err := Load(ctx, bootstrap, testTopic, "door")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	want := map[Partition]int64{{"frames", 0}: 10, {"frames", 1}: 7, {"events", 0}: 3}
	if len(got) != len(want) {
		t.Errorf("got %d checkpoints %v, want %d", len(got), got, len(want))
	}
	for p, next := range want {
		r, ok := got[p]
		if !ok {
			t.Errorf("%v: no checkpoint", p)
			continue
		}
		if r.Next != next || r.Site != "door" || r.Owner != "bridge-a" {
			t.Errorf("%v: got %+v, want next %d of site door by bridge-a", p, r, next)
		}
	}
}

func TestLoadOfEmptyTopic(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := Load(ctx, newCluster(t), testTopic, "door")
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no checkpoints", got, err)
	}
}

func TestFenceStopsTheOlderProducer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	bootstrap := newCluster(t)
	old := txnProducer(ctx, t, bootstrap, "bridge-a")
	writeTxn(ctx, t, old, true, rec("door", "frames", 0, 5))

	// The old producer has a transaction open when it is fenced.
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	topic := testTopic
	if err := old.Produce(Message(&topic, rec("door", "frames", 0, 6)), nil); err != nil {
		t.Fatal(err)
	}
	old.Flush(5000)

	if err := Fence(ctx, bootstrap, "bridge-a"); err != nil {
		t.Fatalf("fence: %v", err)
	}

	err := old.CommitTransaction(ctx)
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		t.Fatalf("commit after fence: got %v, want a fenced error", err)
	}
	switch kerr.Code() {
	case kafka.ErrFenced, kafka.ErrProducerFenced, kafka.ErrInvalidProducerEpoch:
	default:
		t.Fatalf("commit after fence: got %v (code %v), want a fenced error", err, kerr.Code())
	}

	got, err := Load(ctx, bootstrap, testTopic, "door")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if r := got[Partition{"frames", 0}]; r.Next != 5 {
		t.Fatalf("checkpoint after fence: got next %d, want 5 (the fenced transaction must not count)", r.Next)
	}
}
