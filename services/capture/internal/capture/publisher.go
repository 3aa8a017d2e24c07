package capture

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// publisher sends frames and status changes with one idempotent producer
// and remembers the first delivery failure. When the Kafka credentials
// change it replaces its producer (librdkafka reads them once) without
// stopping the camera: publishing pauses while the old producer delivers
// what it holds, so frames keep their order and none is sent twice.
type publisher struct {
	conn       kafkax.Conn
	frameTopic string
	metrics    *metrics

	// swap is held for reading while a message is handed to the
	// producer, and for writing while the producer is replaced.
	swap     sync.RWMutex
	producer *kafka.Producer
	done     chan struct{} // the current producer's event loop ended

	// spool, when set, holds frames while Kafka does not acknowledge
	// them (see spooler).
	spool atomic.Pointer[spooler]

	mu  sync.Mutex
	err error
}

func newPublisher(conn kafkax.Conn, frameTopic string, m *metrics) (*publisher, error) {
	pub := &publisher{conn: conn, frameTopic: frameTopic, metrics: m}
	p, done, err := pub.newProducer()
	if err != nil {
		return nil, err
	}
	pub.producer, pub.done = p, done
	return pub, nil
}

// newProducer makes an idempotent producer whose messages never time out,
// so a broker that is briefly away delays frames instead of duplicating or
// dropping them, and starts its event loop.
func (p *publisher) newProducer() (*kafka.Producer, chan struct{}, error) {
	prod, err := kafka.NewProducer(kafkax.Config(p.conn, map[string]any{
		"enable.idempotence": true,
		"acks":               "all",
		"message.timeout.ms": 0,
		"linger.ms":          5,
		"message.max.bytes":  pipeline.MaxRecordBytes,
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("capture producer: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range prod.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				isFrame := e.TopicPartition.Topic != nil && *e.TopicPartition.Topic == p.frameTopic
				if acks, ok := e.Opaque.(*drainAcks); ok {
					acks.ch <- e.TopicPartition.Error
				} else if sp := p.spool.Load(); sp != nil && isFrame {
					sp.acked()
				}
				if e.TopicPartition.Error != nil {
					if isFrame {
						p.metrics.failed.Inc()
					}
					p.fail(fmt.Errorf("publish %s: %w", kafkax.Where(e), e.TopicPartition.Error))
				} else if isFrame {
					p.metrics.published.Inc()
				}
			case kafka.Error:
				if e.IsFatal() {
					p.fail(fmt.Errorf("producer: %w", e))
				}
			}
		}
	}()
	return prod, done, nil
}

// produce hands m to the current producer.
func (p *publisher) produce(ctx context.Context, m *kafka.Message) error {
	p.swap.RLock()
	defer p.swap.RUnlock()
	return kafkax.Produce(ctx, p.producer, m)
}

// renew replaces the producer with one made from the current credentials,
// after the old one has delivered everything it holds. If the new one
// cannot be made, the old one stays.
func (p *publisher) renew(ctx context.Context) error {
	next, nextDone, err := p.newProducer()
	if err != nil {
		return err
	}
	p.swap.Lock()
	defer p.swap.Unlock()
	for p.producer.Flush(500) > 0 {
		if ctx.Err() != nil {
			next.Close()
			<-nextDone
			return ctx.Err()
		}
	}
	p.producer.Close()
	<-p.done
	p.producer, p.done = next, nextDone
	return nil
}

// renewOnChange renews the producer at every change of creds until ctx
// ends.
func (p *publisher) renewOnChange(ctx context.Context, creds *kafkax.CredentialWatch, logger *slog.Logger) {
	if creds == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-creds.Changed():
			if err := p.renew(ctx); err != nil && ctx.Err() == nil {
				logger.Error("cannot renew the Kafka producer; keeping the current one", "err", err)
			} else if err == nil {
				p.metrics.producerRenewals.Inc()
				logger.Info("Kafka producer renewed with the new credentials")
			}
		}
	}
}

func (p *publisher) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// sendFrame publishes a frame (encoded as value): through the spool when
// there is one.
func (p *publisher) sendFrame(ctx context.Context, f *cefiotv1.Frame, value []byte) error {
	if sp := p.spool.Load(); sp != nil {
		return sp.send(ctx, f, value)
	}
	return p.produce(ctx, frameMessage(p.frameTopic, f, value, nil))
}

// flush waits until the spool is empty and every message is acknowledged,
// or ctx ends.
func (p *publisher) flush(ctx context.Context) error {
	if sp := p.spool.Load(); sp != nil {
		for !sp.empty() {
			if err := p.Err(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	p.swap.RLock()
	defer p.swap.RUnlock()
	for p.producer.Flush(500) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return p.Err()
}

// close stops the drainer, closes the producer, then the spool (its
// frames stay on disk for the next run).
func (p *publisher) close() {
	sp := p.spool.Load()
	if sp != nil {
		sp.stop()
		<-sp.done
	}
	p.swap.Lock()
	p.producer.Close()
	<-p.done
	p.swap.Unlock()
	if sp != nil {
		_ = sp.sp.Close()
	}
}
