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
// Topics are discovered every TopicRefresh: new matching topics and new
// partitions are created in the cloud with the same partition count and
// assigned between two transactions.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	EdgeBootstrap  string
	CloudBootstrap string
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
}

// ErrFenced means a newer bridge with the same transactional id took over.
var ErrFenced = errors.New("fenced by a newer bridge with the same transactional id")

// Run runs a session until ctx ends or it fails.
func Run(ctx context.Context, cfg Config, ctl Controls, obs Observer, logger *slog.Logger) error {
	s := &session{cfg: cfg, ctl: ctl, obs: obs, logger: logger,
		cpTopic: pipeline.CheckpointTopic(cfg.Site), gapTopic: pipeline.GapTopic(cfg.Site),
		parts: map[checkpoint.Partition]*partState{}, tracker: gaps.NewTracker(),
		txnBytes: min(firstTxnBytes, cfg.BatchBytes)}
	defer s.close()
	if err := s.open(ctx); err != nil {
		return err
	}
	return s.loop(ctx)
}

type partState struct {
	cloudTopic string
	cp         checkpoint.Record // last committed
}

type session struct {
	cfg      Config
	ctl      Controls
	obs      Observer
	logger   *slog.Logger
	cpTopic  string
	gapTopic string

	edgeAdmin, cloudAdmin *kafka.AdminClient
	producer              *kafka.Producer
	consumer              *kafka.Consumer
	parts                 map[checkpoint.Partition]*partState
	tracker               *gaps.Tracker
	paused                bool
	lastRefresh           time.Time
	pendingGaps           []gaps.Gap
	// txnBytes is the byte budget of the next transaction: it starts small
	// and doubles while commits are quick, so the first commit after a
	// (re)start or an outage comes within a second even on a slow WAN,
	// and transactions grow to BatchBytes where the link is fast.
	txnBytes int
}

// Transaction size bounds of the adaptive budget.
const (
	firstTxnBytes = 1 << 20
	minTxnBytes   = 64 << 10
	quickCommit   = time.Second
	// idleClose commits an open transaction once the edge consumer has
	// had nothing for this long, instead of waiting out BatchWait.
	idleClose  = 20 * time.Millisecond
	slowCommit = 3 * time.Second
)

// adapt updates the transaction budget after a transaction of took.
func (s *session) adapt(took time.Duration, bytes int) {
	switch {
	case took < quickCommit && bytes >= s.txnBytes/2:
		s.txnBytes = min(2*s.txnBytes, s.cfg.BatchBytes)
	case took > slowCommit:
		s.txnBytes = max(s.txnBytes/2, minTxnBytes)
	}
}

func (s *session) close() {
	if s.consumer != nil {
		_ = s.consumer.Close()
	}
	if s.producer != nil {
		s.producer.Close()
	}
	if s.edgeAdmin != nil {
		s.edgeAdmin.Close()
	}
	if s.cloudAdmin != nil {
		s.cloudAdmin.Close()
	}
}

func (s *session) open(ctx context.Context) error {
	var err error
	if s.cloudAdmin, err = kafka.NewAdminClient(kafkax.Config(s.cfg.CloudBootstrap, nil)); err != nil {
		return fmt.Errorf("cloud admin client: %w", err)
	}
	if s.edgeAdmin, err = kafka.NewAdminClient(kafkax.Config(s.cfg.EdgeBootstrap, nil)); err != nil {
		return fmt.Errorf("edge admin client: %w", err)
	}
	for _, spec := range []kafkax.TopicSpec{
		{Name: s.cpTopic, Partitions: 1, Configs: checkpoint.TopicConfig},
		{Name: s.gapTopic, Partitions: 1},
	} {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := kafkax.EnsureTopicWith(tctx, s.cloudAdmin, spec)
		cancel()
		if err != nil {
			return err
		}
	}
	txnMs := int(s.cfg.TransactionTimeout / time.Millisecond)
	s.producer, err = kafka.NewProducer(kafkax.Config(s.cfg.CloudBootstrap, map[string]any{
		"transactional.id":                   s.cfg.TransactionID,
		"enable.idempotence":                 true,
		"transaction.timeout.ms":             txnMs,
		"message.timeout.ms":                 txnMs,
		"linger.ms":                          5,
		"batch.size":                         1 << 20,
		"batch.num.messages":                 10000,
		"message.max.bytes":                  16 << 20,
		"queue.buffering.max.kbytes":         20 << 10, // above the largest record (16 MiB)
		"compression.type":                   "none",
		"socket.timeout.ms":                  min(20000, txnMs),
		"socket.connection.setup.timeout.ms": 3000,
		"reconnect.backoff.ms":               100,
		"reconnect.backoff.max.ms":           1000,
		"go.delivery.reports":                false,
	}))
	if err != nil {
		return fmt.Errorf("cloud producer: %w", err)
	}
	go func(ev chan kafka.Event) {
		for e := range ev {
			if kerr, ok := e.(kafka.Error); ok {
				s.logger.Debug("cloud producer", "err", kerr)
			}
		}
	}(s.producer.Events())
	if err := s.initTransactions(ctx); err != nil {
		return err
	}
	s.consumer, err = kafka.NewConsumer(kafkax.Config(s.cfg.EdgeBootstrap, map[string]any{
		"group.id":                   s.cfg.TransactionID,
		"enable.auto.commit":         false,
		"enable.auto.offset.store":   false,
		"isolation.level":            "read_committed",
		"auto.offset.reset":          "earliest",
		"fetch.max.bytes":            32 << 20,
		"max.partition.fetch.bytes":  16 << 20,
		"queued.max.messages.kbytes": 64 << 10,
		// Fetch again soon after the local queue drains below its limit
		// (the default waits up to a second, which starves the producer).
		"fetch.queue.backoff.ms":             5,
		"topic.metadata.refresh.interval.ms": 10000,
	}))
	if err != nil {
		return fmt.Errorf("edge consumer: %w", err)
	}
	return s.refreshTopics(ctx)
}

// initTransactions retries while the cloud cluster does not answer.
func (s *session) initTransactions(ctx context.Context) error {
	err := kafkax.InitTransactions(ctx, s.producer, txnCallTimeout, func(err error) {
		s.logger.Warn("cloud cluster does not complete InitTransactions yet; retrying", "err", err)
	})
	if err != nil {
		return fmt.Errorf("init transactions at the cloud cluster: %w", err)
	}
	return nil
}

// refreshTopics assigns new matching partitions and drops vanished ones.
func (s *session) refreshTopics(ctx context.Context) error {
	s.lastRefresh = time.Now()
	md, err := s.edgeAdmin.GetMetadata(nil, true, 10000)
	if err != nil {
		return fmt.Errorf("edge metadata: %w", err)
	}
	want := map[checkpoint.Partition]string{}
	counts := map[string]int{}
	for name, t := range md.Topics {
		if t.Error.Code() != kafka.ErrNoError || !s.cfg.Selection.Match(name) || len(t.Partitions) == 0 {
			continue
		}
		counts[name] = len(t.Partitions)
		for _, p := range t.Partitions {
			want[checkpoint.Partition{Topic: name, Partition: p.ID}] = pipeline.CloudTopic(s.cfg.Site, name)
		}
	}
	var added []checkpoint.Partition
	for p := range want {
		if _, ok := s.parts[p]; !ok {
			added = append(added, p)
		}
	}
	var removed []kafka.TopicPartition
	for p := range s.parts {
		if _, ok := want[p]; !ok {
			t := p.Topic
			removed = append(removed, kafka.TopicPartition{Topic: &t, Partition: p.Partition})
			delete(s.parts, p)
			s.tracker.Forget(p)
		}
	}
	if len(removed) > 0 {
		s.logger.Warn("edge partitions vanished; no longer forwarded", "partitions", len(removed))
		if err := s.consumer.IncrementalUnassign(removed); err != nil {
			return fmt.Errorf("unassign vanished partitions: %w", err)
		}
	}
	if len(added) == 0 {
		if len(removed) > 0 {
			s.reportAssigned()
		}
		return nil
	}
	slices.SortFunc(added, func(a, b checkpoint.Partition) int {
		if a.Topic != b.Topic {
			return cmpString(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	for _, topic := range slices.Sorted(maps.Keys(counts)) {
		if err := s.ensureCloudTopic(ctx, topic, counts[topic]); err != nil {
			return err
		}
	}
	cps, err := s.loadCheckpoints(ctx, added)
	if err != nil {
		return err
	}
	assign := make([]kafka.TopicPartition, 0, len(added))
	for _, p := range added {
		cp, ok := cps[p]
		if !ok {
			cp = checkpoint.Record{Site: s.cfg.Site, Topic: p.Topic, Partition: p.Partition, Next: 0}
		}
		s.parts[p] = &partState{cloudTopic: want[p], cp: cp}
		s.tracker.Start(p, cp.Next)
		t := p.Topic
		assign = append(assign, kafka.TopicPartition{Topic: &t, Partition: p.Partition, Offset: kafka.Offset(cp.Next)})
	}
	if err := s.consumer.IncrementalAssign(assign); err != nil {
		return fmt.Errorf("assign edge partitions: %w", err)
	}
	if s.paused {
		_ = s.consumer.Pause(assign)
	}
	s.logger.Info("forwarding edge partitions", "added", len(added), "total", len(s.parts), "resumed_from_checkpoint", len(cps))
	s.reportAssigned()
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *session) reportAssigned() {
	out := make(map[checkpoint.Partition]PartitionInfo, len(s.parts))
	for p, st := range s.parts {
		out[p] = PartitionInfo{CloudTopic: st.cloudTopic, Checkpoint: st.cp}
	}
	s.obs.Assigned(s.cfg.TransactionID, out)
}

// ensureCloudTopic creates the cloud topic with the edge partition count,
// or adds partitions to an existing one that has fewer.
func (s *session) ensureCloudTopic(ctx context.Context, topic string, n int) error {
	target := pipeline.CloudTopic(s.cfg.Site, topic)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := kafkax.EnsureTopicWith(tctx, s.cloudAdmin, kafkax.TopicSpec{Name: target, Partitions: n})
	if err != nil {
		return err
	}
	if got >= n {
		return nil
	}
	s.logger.Info("edge topic grew; adding cloud partitions", "topic", target, "from", got, "to", n)
	res, err := s.cloudAdmin.CreatePartitions(tctx, []kafka.PartitionsSpecification{{Topic: target, IncreaseTo: n}})
	if err != nil {
		return fmt.Errorf("add partitions to %s: %w", target, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("add partitions to %s: %w", target, r.Error)
		}
	}
	for {
		got, err := kafkax.PartitionCount(s.cloudAdmin, target)
		if err == nil && got >= n {
			return nil
		}
		select {
		case <-tctx.Done():
			return fmt.Errorf("partitions of %s not visible: %w", target, tctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loadCheckpoints reads the checkpoints of parts; when another workload
// wrote the last checkpoint of one of them, it fences that workload first so
// that it cannot commit behind our back, and reads again.
func (s *session) loadCheckpoints(ctx context.Context, parts []checkpoint.Partition) (map[checkpoint.Partition]checkpoint.Record, error) {
	all, err := checkpoint.Load(ctx, s.cfg.CloudBootstrap, s.cpTopic, s.cfg.Site)
	if err != nil {
		return nil, err
	}
	owners := map[string]bool{}
	for _, p := range parts {
		if r, ok := all[p]; ok && r.Owner != "" && r.Owner != s.cfg.TransactionID {
			owners[r.Owner] = true
		}
	}
	if len(owners) > 0 {
		for _, o := range slices.Sorted(maps.Keys(owners)) {
			s.logger.Warn("taking over partitions another bridge workload forwarded; fencing it", "previous_owner", o)
			if err := checkpoint.Fence(ctx, s.cfg.CloudBootstrap, o); err != nil {
				return nil, err
			}
		}
		if all, err = checkpoint.Load(ctx, s.cfg.CloudBootstrap, s.cpTopic, s.cfg.Site); err != nil {
			return nil, err
		}
	}
	out := map[checkpoint.Partition]checkpoint.Record{}
	for _, p := range parts {
		if r, ok := all[p]; ok {
			out[p] = r
		}
	}
	return out, nil
}

func (s *session) loop(ctx context.Context) error {
	for ctx.Err() == nil {
		if time.Since(s.lastRefresh) >= s.cfg.TopicRefresh {
			if err := s.refreshTopics(ctx); err != nil {
				return err
			}
			if err := s.findIdleGaps(ctx); err != nil {
				return err
			}
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
		ev := s.consumer.Poll(int(timeout / time.Millisecond))
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
			if !b.open {
				if err := s.begin(ctx, b); err != nil {
					return err
				}
			}
			size := len(e.Key) + len(e.Value)
			if err := lim.Wait(ctx, size); err != nil {
				return err
			}
			if s.tracker.Observe(p, int64(e.TopicPartition.Offset)) {
				s.logger.Warn("edge offset went backwards (topic recreated or truncated?); forwarding", "where", kafkax.Where(e))
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
	for _, g := range found {
		st := s.parts[g.Partition]
		if st == nil {
			continue
		}
		s.logger.Error("GAP: edge retention removed records before they were forwarded",
			"topic", g.Partition.Topic, "partition", g.Partition.Partition,
			"start_offset", g.Start, "end_offset", g.End, "missing_offsets", g.Offsets(), "log_start_offset", g.LogStart)
		if err := s.produce(ctx, gaps.Message(&s.gapTopic, s.cfg.Site, st.cloudTopic, s.cfg.TransactionID, g, now)); err != nil {
			return err
		}
		t := gapTotals[g.Partition]
		gapTotals[g.Partition] = [2]int64{t[0] + g.Offsets(), t[1] + 1}
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
	c := Commit{Records: b.records, Bytes: b.bytes, Duration: time.Since(start), Partitions: map[checkpoint.Partition]PartitionCommit{}, Gaps: found}
	for p, pc := range b.parts {
		if st := s.parts[p]; st != nil {
			st.cp = pc.Checkpoint
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
	var kerr kafka.Error
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

// resolveGaps reads the log start offsets of partitions with offset jumps
// and returns the gaps among the jumps. The edge may be failing over, so it
// retries for a while; a gap must not be passed by a checkpoint unrecorded.
func (s *session) resolveGaps(ctx context.Context) ([]gaps.Gap, error) {
	cands := s.tracker.Candidates()
	if len(cands) == 0 {
		return nil, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, _, err := s.watermarks(ctx, cands, false)
		if err == nil {
			return s.tracker.Resolve(starts), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("log start offsets of edge partitions: %w", err)
		}
		s.logger.Warn("cannot read edge log start offsets yet; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// watermarks returns the log start (and with ends, the end) offsets of parts.
func (s *session) watermarks(ctx context.Context, parts []checkpoint.Partition, ends bool) (starts, endOffs map[checkpoint.Partition]int64, err error) {
	return Watermarks(ctx, s.edgeAdmin, parts, ends)
}

// Watermarks reads the log start offsets, and with ends the last stable
// offsets, of parts in one round trip each.
func Watermarks(ctx context.Context, admin *kafka.AdminClient, parts []checkpoint.Partition, ends bool) (starts, endOffs map[checkpoint.Partition]int64, err error) {
	query := func(spec kafka.OffsetSpec) (map[checkpoint.Partition]int64, error) {
		req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(parts))
		for _, p := range parts {
			t := p.Topic
			req[kafka.TopicPartition{Topic: &t, Partition: p.Partition}] = spec
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := admin.ListOffsets(rctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
		if err != nil {
			return nil, err
		}
		out := make(map[checkpoint.Partition]int64, len(parts))
		for tp, r := range res.ResultInfos {
			if r.Error.Code() != kafka.ErrNoError {
				return nil, fmt.Errorf("%s/%d: %w", *tp.Topic, tp.Partition, r.Error)
			}
			out[checkpoint.Partition{Topic: *tp.Topic, Partition: tp.Partition}] = int64(r.Offset)
		}
		return out, nil
	}
	if len(parts) == 0 {
		return map[checkpoint.Partition]int64{}, map[checkpoint.Partition]int64{}, nil
	}
	if starts, err = query(kafka.EarliestOffsetSpec); err != nil {
		return nil, nil, err
	}
	if ends {
		if endOffs, err = query(kafka.LatestOffsetSpec); err != nil {
			return nil, nil, err
		}
	}
	return starts, endOffs, nil
}

// findIdleGaps records gaps of partitions whose whole unforwarded part was
// removed by retention, leaving nothing to read: no record arrives there to
// reveal the gap.
func (s *session) findIdleGaps(ctx context.Context) error {
	parts := slices.Collect(maps.Keys(s.parts))
	starts, ends, err := s.watermarks(ctx, parts, true)
	if err != nil {
		s.logger.Debug("edge watermarks", "err", err)
		return nil // checked again at the next refresh
	}
	for _, p := range parts {
		ls, ok1 := starts[p]
		le, ok2 := ends[p]
		if !ok1 || !ok2 {
			continue
		}
		if g, ok := s.tracker.Idle(p, ls, le); ok {
			s.pendingGaps = append(s.pendingGaps, g)
		}
	}
	return nil
}
