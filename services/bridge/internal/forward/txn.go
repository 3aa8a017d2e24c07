package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/gaps"
)

type batch struct {
	open           bool
	started        time.Time
	records, bytes int
	parts          map[checkpoint.Partition]*PartitionCommit
}

// transaction fills one transaction and commits it. Without records or
// gaps it returns after a short wait without a transaction.
func (s *session) transaction(ctx context.Context) error {
	b := &batch{parts: map[checkpoint.Partition]*PartitionCommit{}}
	idleUntil := time.Now().Add(200 * time.Millisecond)
	lim := s.ctl.Limiter()
fill:
	for ctx.Err() == nil {
		if b.open {
			if b.records >= s.cfg.BatchRecords || b.bytes >= s.txnBytes || time.Since(b.started) >= s.cfg.BatchWait || s.ctl.Paused() {
				break
			}
		} else if time.Now().After(idleUntil) && len(s.pendingGaps) == 0 {
			return nil
		} else if len(s.pendingGaps) > 0 {
			if err := s.begin(ctx, b); err != nil {
				return err
			}
			break
		}
		timeout := 100 * time.Millisecond
		if b.open {
			timeout = min(idleClose, max(time.Until(b.started.Add(s.cfg.BatchWait)), time.Millisecond))
		}
		ev := s.next(timeout)
		if ev == nil && b.open && timeout == idleClose {
			break // the edge has nothing more right now: commit what we have
		}
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				s.logger.Debug("edge fetch error", "where", kafkax.Where(e), "err", e.TopicPartition.Error)
				continue
			}
			p := checkpoint.Partition{Topic: *e.TopicPartition.Topic, Partition: e.TopicPartition.Partition}
			st, ok := s.parts[p]
			if !ok {
				continue // unassigned meanwhile
			}
			size := len(e.Key) + len(e.Value)
			if b.open && time.Since(b.started)+lim.Delay() > s.maxOpen() {
				// A low rate limit must not hold the transaction open
				// until the cloud aborts it: commit what it has, and
				// forward this record in the next one.
				s.carry = e
				break fill
			}
			// The limiter is waited for before a transaction opens, so
			// a long wait never counts against its timeout.
			if err := lim.Wait(ctx, size); err != nil {
				return err
			}
			if !b.open {
				if err := s.begin(ctx, b); err != nil {
					return err
				}
			}
			if reset, back := s.tracker.Observe(p, int64(e.TopicPartition.Offset), st.epoch()); back {
				// Not forwarded silently: the reset goes to the gap topic
				// in this transaction, and the checkpoint's epoch moves on.
				s.pendingGaps = append(s.pendingGaps, reset)
				st.pendingResets++
				s.logger.Warn("edge offsets went back (topic recreated or truncated?): a new epoch of the partition", "where", kafkax.Where(e), "reset", reset.String())
			}
			target := st.cloudTopic
			if err := s.produce(ctx, &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &target, Partition: p.Partition},
				Key:            e.Key, Value: e.Value, Headers: e.Headers, Timestamp: e.Timestamp,
			}); err != nil {
				return err
			}
			pc := b.parts[p]
			if pc == nil {
				pc = &PartitionCommit{}
				b.parts[p] = pc
			}
			pc.Records++
			pc.Bytes += size
			b.records++
			b.bytes += size
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("edge consumer: %w", e)
			}
			s.logger.Debug("edge consumer", "err", e)
		}
	}
	if !b.open {
		return nil
	}
	if ctx.Err() != nil {
		// Stopping (moved, fenced or shutting down): abort rather than
		// commit; the next session resumes from the last checkpoint.
		return s.txnError(ctx, "stopping with a transaction open", ctx.Err())
	}
	return s.commit(ctx, b)
}

// next is the record carried over from the last transaction, or the edge
// consumer's next event within timeout.
func (s *session) next(timeout time.Duration) kafka.Event {
	if s.carry != nil {
		e := s.carry
		s.carry = nil
		return e
	}
	return s.consumer.Poll(int(timeout / time.Millisecond))
}

// maxOpen is how long a transaction may stay open while it is filled:
// half the transaction timeout, the rest is for its commit.
func (s *session) maxOpen() time.Duration { return s.cfg.TransactionTimeout / 2 }

func (s *session) begin(ctx context.Context, b *batch) error {
	if err := s.producer.BeginTransaction(); err != nil {
		return s.txnError(ctx, "begin transaction", err)
	}
	b.open, b.started = true, time.Now()
	return nil
}

// produce enqueues msg, waiting while the producer's queue is full (the WAN
// is slower than the edge).
func (s *session) produce(ctx context.Context, msg *kafka.Message) error {
	for {
		err := s.producer.Produce(msg, nil)
		if err == nil {
			return nil
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
			return s.txnError(ctx, "produce", err)
		}
		// Wait for room, not for an empty queue: the pipeline stays full.
		s.producer.Flush(5)
		if ctx.Err() != nil {
			return s.txnError(ctx, "produce", ctx.Err())
		}
	}
}

// commit resolves the batch's gaps, writes markers and checkpoints, and
// commits.
func (s *session) commit(ctx context.Context, b *batch) error {
	found, err := s.resolveGaps(ctx)
	if err != nil {
		return err
	}
	found = append(s.pendingGaps, found...)
	now := time.Now()
	gapTotals := map[checkpoint.Partition][2]int64{}
	epochs := map[checkpoint.Partition]int64{}
	for _, g := range found {
		st := s.parts[g.Partition]
		if st == nil {
			continue
		}
		if g.Reset {
			s.logger.Error("GAP: edge offsets went back; whatever the old epoch held from start_offset on and was not forwarded is lost",
				"topic", g.Partition.Topic, "partition", g.Partition.Partition, "start_offset", g.Start, "end_offset", g.End, "epoch", g.Epoch)
		} else {
			s.logger.Error("GAP: edge retention removed records before they were forwarded",
				"topic", g.Partition.Topic, "partition", g.Partition.Partition,
				"start_offset", g.Start, "end_offset", g.End, "missing_offsets", g.Offsets(), "log_start_offset", g.LogStart)
		}
		if err := s.produce(ctx, gaps.Message(&s.gapTopic, s.cfg.Site, st.cloudTopic, s.cfg.TransactionID, g, now)); err != nil {
			return err
		}
		t := gapTotals[g.Partition]
		gapTotals[g.Partition] = [2]int64{t[0] + g.Offsets(), t[1] + 1}
		if g.Reset {
			epochs[g.Partition] = max(epochs[g.Partition], g.Epoch)
		}
		if b.parts[g.Partition] == nil {
			b.parts[g.Partition] = &PartitionCommit{}
		}
	}
	for p, pc := range b.parts {
		st := s.parts[p]
		if st == nil {
			continue
		}
		cp := st.cp
		cp.Site, cp.Topic, cp.Partition = s.cfg.Site, p.Topic, p.Partition
		cp.Next = s.tracker.Next(p)
		cp.Owner = s.cfg.TransactionID
		cp.GapOffsets += gapTotals[p][0]
		cp.Gaps += gapTotals[p][1]
		cp.Epoch = max(cp.Epoch, epochs[p])
		if st.topicID != "" {
			cp.TopicID = st.topicID
		}
		cp.Time = now
		pc.Checkpoint = cp
		if err := s.produce(ctx, checkpoint.Message(&s.cpTopic, cp)); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := s.commitTransaction(ctx); err != nil {
		return err
	}
	s.pendingGaps = nil
	s.logger.Debug("transaction committed", "records", b.records, "bytes", b.bytes,
		"fill", start.Sub(b.started).Round(time.Millisecond), "commit", time.Since(start).Round(time.Millisecond), "budget", s.txnBytes)
	s.adapt(time.Since(b.started), b.bytes)
	c := Commit{Records: b.records, Bytes: b.bytes, Duration: time.Since(start), Open: time.Since(b.started), Partitions: map[checkpoint.Partition]PartitionCommit{}, Gaps: found}
	for p, pc := range b.parts {
		if st := s.parts[p]; st != nil {
			st.cp, st.pendingResets = pc.Checkpoint, 0
		}
		c.Partitions[p] = *pc
	}
	s.obs.Committed(s.cfg.TransactionID, c)
	return nil
}

// commitTransaction retries a commit that timed out (the WAN may be down
// or slow); any other failure, or ctx ending, ends the session.
func (s *session) commitTransaction(ctx context.Context) error {
	err := kafkax.CommitTransaction(ctx, s.producer, txnCallTimeout, func(err error) {
		s.logger.Warn("commit not complete yet (WAN slow or down); retrying", "err", err)
	})
	if err != nil {
		return s.txnError(ctx, "commit", err)
	}
	return nil
}

// txnCallTimeout bounds each transactional call; the worker's lease bounds
// it further (leasebound), so a fenced bridge never waits on the WAN.
const txnCallTimeout = 10 * time.Second

// txnError turns a producer error into the session's end, aborting what can
// be aborted.
func (s *session) txnError(ctx context.Context, op string, err error) error {
	if errors.Is(err, kafkax.ErrCallHung) {
		// Nothing more can be asked of this producer; the next session's
		// InitTransactions fences it and aborts its transaction.
		s.producerHung = err
		s.obs.Aborted(s.cfg.TransactionID, err)
		return fmt.Errorf("%s: %w", op, err)
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) && kerr.Code() == kafka.ErrFatal {
		// Produce only says that the producer failed fatally before (it
		// was fenced while a transaction was being filled, say); the
		// producer keeps the cause.
		if ferr := s.producer.GetFatalError(); ferr != nil {
			err = ferr
		}
	}
	if errors.As(err, &kerr) && (kerr.IsFatal() || kerr.Code() == kafka.ErrFenced) {
		s.obs.Aborted(s.cfg.TransactionID, err)
		if kerr.Code() == kafka.ErrFenced || kerr.Code() == kafka.ErrProducerFenced || kerr.Code() == kafka.ErrInvalidProducerEpoch {
			return fmt.Errorf("%s: %w: %v", op, ErrFenced, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	aerr := kafkax.AbortTransaction(ctx, s.producer, 5*time.Second)
	s.obs.Aborted(s.cfg.TransactionID, err)
	if aerr != nil {
		return fmt.Errorf("%s: %w (abort: %v)", op, err, aerr)
	}
	return fmt.Errorf("%s: %w", op, err)
}
