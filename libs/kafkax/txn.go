package kafkax

import (
	"context"
	"errors"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/leasebound"
)

// librdkafka's transactional calls honour their context's deadline, not its
// cancellation: once started they run to their timeout. The helpers below
// give every attempt a deadline from the worker's lease (leasebound), so a
// fenced worker never waits on the network past its lease.
//
// Nor is the deadline always kept: a commit resumed across a transaction
// the coordinator aborted meanwhile has been seen never to return
// (librdkafka #3041 and kin). Every call therefore runs under a watchdog:
// one that has not returned hungGrace after its deadline is left behind
// with ErrCallHung, and its producer must be abandoned (AbandonOrClose),
// not closed or used again. The next producer of the same transactional
// id fences it at InitTransactions.

// ErrCallHung is returned for a transactional call that did not return by
// its deadline: the producer is stuck in it and is abandoned.
var ErrCallHung = errors.New("transactional call did not return by its deadline; its producer is abandoned")

// hungGrace is how long after its deadline a call may still return.
const hungGrace = 5 * time.Second

// watched runs call(ctx) and waits for it until hungGrace past ctx's
// deadline (for ever without one).
func watched(ctx context.Context, call func(context.Context) error) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return call(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	t := time.NewTimer(time.Until(deadline) + hungGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrCallHung
	}
}

// AbandonOrClose closes p, unless err says a call on it hung: closing a
// producer stuck in a call could hang as well, so it is left to the
// process (its transactional id is fenced by its successor).
func AbandonOrClose(p *kafka.Producer, err error) {
	if errors.Is(err, ErrCallHung) {
		return
	}
	p.Close()
}

// InitTransactions initialises p's transactions (fencing any earlier
// producer with the same transactional id), retrying attempts that time out
// while ctx lasts. Each attempt lasts attempt at most.
func InitTransactions(ctx context.Context, p *kafka.Producer, attempt time.Duration, onRetry func(error)) error {
	for {
		cctx, cancel := leasebound.CallContext(ctx, attempt)
		err := watched(cctx, p.InitTransactions)
		cancel()
		if err == nil || ctx.Err() != nil || !retriable(err) {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
	}
}

// CommitTransaction commits p's open transaction, retrying attempts that
// time out while ctx lasts (librdkafka resumes the same commit). It returns
// any other failure, or ctx's error once ctx ends: then the caller aborts
// (AbortTransaction).
func CommitTransaction(ctx context.Context, p *kafka.Producer, attempt time.Duration, onRetry func(error)) error {
	for {
		cctx, cancel := leasebound.CallContext(ctx, attempt)
		err := watched(cctx, p.CommitTransaction)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrCallHung) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		var kerr kafka.Error
		if !retriable(err) || (errors.As(err, &kerr) && kerr.TxnRequiresAbort()) {
			return err
		}
		if onRetry != nil {
			onRetry(err)
		}
	}
}

// SendOffsetsToTransaction adds consumer offsets to p's open transaction
// within the lease's bound.
func SendOffsetsToTransaction(ctx context.Context, p *kafka.Producer, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata, max time.Duration) error {
	cctx, cancel := leasebound.CallContext(ctx, max)
	defer cancel()
	return watched(cctx, func(cctx context.Context) error { return p.SendOffsetsToTransaction(cctx, offsets, meta) })
}

// AbortTransaction aborts p's open transaction, also after ctx has ended,
// within max and the lease's bound. An abort that cannot finish in time is
// completed by the next InitTransactions of the same transactional id (or
// by the broker's transaction timeout); until then nothing of the
// transaction is visible to read_committed consumers.
func AbortTransaction(ctx context.Context, p *kafka.Producer, max time.Duration) error {
	actx, cancel := leasebound.CleanupContext(ctx, max)
	defer cancel()
	if actx.Err() != nil {
		return actx.Err() // no time left: the next InitTransactions aborts it
	}
	return watched(actx, p.AbortTransaction)
}

func retriable(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && !kerr.IsFatal() && (kerr.IsRetriable() || kerr.IsTimeout() || kerr.Code() == kafka.ErrTimedOut)
}
