// Package forward is one forwarding session of the bridge: an edge consumer
// (read_committed, partitions assigned by the bridge, no consumer group) and
// a transactional producer to the cloud cluster.
//
// Each transaction holds a batch of records, copied to the cloud topic
// edge-<site>.<topic> with the same partition, key, headers and timestamp;
// the gap markers of the batch; and one checkpoint record per partition it
// advanced. A session starts from the committed checkpoints, so any failure
// is handled by ending the session: the open transaction is aborted (by the
// next InitTransactions at the latest) and the next session resumes exactly
// where the last commit ended.
//
// Topics are discovered every TopicRefresh, off the forwarding loop (a
// broker that just died must not stall the partitions whose leaders live):
// new matching topics and new partitions are created in the cloud with the
// same partition count and assigned between two transactions.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/gaps"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"
	"github.com/cefiot/cefiot/services/bridge/internal/selection"
)

// Config describes a session.
type Config struct {
	Site           string
	TransactionID  string
	EdgeBootstrap  kafkax.Conn
	CloudBootstrap kafkax.Conn
	Selection      selection.Selection
	// A transaction is committed when it holds BatchRecords records or
	// BatchBytes bytes, or BatchWait after its first record.
	BatchRecords int
	BatchBytes   int
	BatchWait    time.Duration
	TopicRefresh time.Duration
	// TransactionTimeout is the producer's transaction.timeout.ms: how long
	// the cloud cluster keeps a transaction of a vanished bridge open.
	TransactionTimeout time.Duration
}

// Controls are the live settings of the bridge.
type Controls interface {
	Paused() bool
	Limiter() *ratelimit.Limiter
}

// PartitionInfo describes an assigned partition.
type PartitionInfo struct {
	CloudTopic string
	Checkpoint checkpoint.Record
}

// Commit describes one committed transaction.
type Commit struct {
	Records, Bytes int
	Duration       time.Duration
	// Open is how long the transaction was open, from its first record
	// to the end of its commit.
	Open time.Duration
	// Partitions holds the checkpoints written, with the records and bytes
	// forwarded per partition.
	Partitions map[checkpoint.Partition]PartitionCommit
	Gaps       []gaps.Gap
}

// PartitionCommit is one partition's part of a commit.
type PartitionCommit struct {
	Checkpoint     checkpoint.Record
	Records, Bytes int
}

// Observer receives what a session does (for status and metrics).
type Observer interface {
	// Assigned reports the full set of partitions after every change.
	Assigned(txnID string, parts map[checkpoint.Partition]PartitionInfo)
	Committed(txnID string, c Commit)
	Aborted(txnID string, err error)
	// Halted reports that the session committed its open transaction and
	// stopped reading for a pause (true), or reads again (false).
	Halted(txnID string, halted bool)
}

// ErrFenced means a newer bridge with the same transactional id took over.
var ErrFenced = errors.New("fenced by a newer bridge with the same transactional id")

// Run runs a session until ctx ends or it fails.
func Run(ctx context.Context, cfg Config, ctl Controls, obs Observer, logger *slog.Logger) error {
	s := &session{cfg: cfg, ctl: ctl, obs: obs, logger: logger,
		cpTopic: pipeline.CheckpointTopic(cfg.Site), gapTopic: pipeline.GapTopic(cfg.Site),
		parts: map[checkpoint.Partition]*partState{}, tracker: gaps.NewTracker(),
		txnBytes: min(firstTxnBytes, cfg.BatchBytes), views: make(chan edgeView, 1)}
	defer s.close()
	if err := s.open(ctx); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Add(1)
	go func() {
		defer watching.Done()
		s.watchEdge(watchCtx)
	}()
	defer func() {
		stopWatch()
		watching.Wait() // before close frees the admin client
	}()
	return s.loop(ctx)
}

type partState struct {
	cloudTopic string
	cp         checkpoint.Record // last committed
	// pendingResets counts the resets found in the open transaction.
	pendingResets int64
	// topicID is the edge topic's id when the partition was assigned.
	topicID string
}

// epoch is the partition's offset epoch (pending resets included: two
// resets in one transaction count twice).
func (st *partState) epoch() int64 { return st.cp.Epoch + st.pendingResets }

type session struct {
	cfg      Config
	ctl      Controls
	obs      Observer
	logger   *slog.Logger
	cpTopic  string
	gapTopic string

	edgeAdmin, cloudAdmin *kafka.AdminClient
	producer              *kafka.Producer
	producerHung          error // a call on producer hung (kafkax.ErrCallHung): abandon it
	consumer              *kafka.Consumer
	parts                 map[checkpoint.Partition]*partState
	tracker               *gaps.Tracker
	paused                bool
	// views carries the newest edge view from watchEdge.
	views       chan edgeView
	pendingGaps []gaps.Gap
	// txnBytes is the byte budget of the next transaction: it starts small
	// and doubles while commits are quick, so the first commit after a
	// (re)start or an outage comes within a second even on a slow WAN,
	// and transactions grow to BatchBytes where the link is fast.
	txnBytes int
	// carry is a record read but left for the next transaction (see
	// transaction: the rate limit would have held this one open too long).
	carry *kafka.Message
}

func (s *session) loop(ctx context.Context) error {
	for ctx.Err() == nil {
		select {
		case v := <-s.views:
			if err := s.applyView(ctx, v); err != nil {
				return err
			}
			s.findIdleGaps(v)
		default:
		}
		if s.ctl.Paused() {
			if err := s.setPaused(true); err != nil {
				return err
			}
			if err := s.pollIdle(); err != nil {
				return err
			}
			continue
		}
		if err := s.setPaused(false); err != nil {
			return err
		}
		if err := s.transaction(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) assignment() []kafka.TopicPartition {
	out := make([]kafka.TopicPartition, 0, len(s.parts))
	for p := range s.parts {
		t := p.Topic
		out = append(out, kafka.TopicPartition{Topic: &t, Partition: p.Partition})
	}
	return out
}

func (s *session) setPaused(v bool) error {
	if s.paused == v {
		return nil
	}
	s.paused = v
	var err error
	if v {
		err = s.consumer.Pause(s.assignment())
		s.logger.Info("forwarding paused")
	} else {
		err = s.consumer.Resume(s.assignment())
		s.logger.Info("forwarding resumed")
	}
	if err != nil {
		return fmt.Errorf("pause=%v: %w", v, err)
	}
	s.obs.Halted(s.cfg.TransactionID, v)
	return nil
}

// pollIdle serves consumer events while paused.
func (s *session) pollIdle() error {
	ev := s.consumer.Poll(100)
	if kerr, ok := ev.(kafka.Error); ok && kerr.IsFatal() {
		return fmt.Errorf("edge consumer: %w", kerr)
	}
	return nil
}
