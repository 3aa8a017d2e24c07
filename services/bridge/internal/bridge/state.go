package bridge

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/forward"
	"github.com/cefiot/cefiot/services/bridge/internal/linkprobe"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// state is what the bridge process knows about its forwarding: the live
// controls, and per partition the last committed checkpoint, the edge
// watermarks and the mean record size. Sessions report into it
// (forward.Observer); the admin API and the metrics read it.
type state struct {
	metrics *metrics
	limiter *ratelimit.Limiter
	probe   *linkprobe.Probe

	mu     sync.Mutex
	paused bool
	// halted holds, per workload, whether its session confirmed the
	// pause (Observer.Halted); changed is closed and replaced at every
	// change of it.
	halted     map[string]bool
	changed    chan struct{}
	selection  map[string]string // txn id -> selection
	parts      map[string]map[checkpoint.Partition]*partStatus
	lastCommit time.Time
	window     []sample // commits of the last throughputWindow
	drainRate  float64  // bytes/s, measured while draining
	peakRate   float64  // highest throughput over throughputWindow seen
	prevCommit time.Time
}

type partStatus struct {
	cloudTopic  string
	cp          checkpoint.Record
	start, end  int64
	known       bool // watermarks read at least once
	meanBytes   float64
	lastForward time.Time
}

type sample struct {
	at    time.Time
	bytes int
}

const throughputWindow = 5 * time.Second

func newState(m *metrics, limiter *ratelimit.Limiter, probe *linkprobe.Probe) *state {
	return &state{metrics: m, limiter: limiter, probe: probe, selection: map[string]string{}, parts: map[string]map[checkpoint.Partition]*partStatus{},
		halted: map[string]bool{}, changed: make(chan struct{})}
}

// Paused implements forward.Controls.
func (s *state) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Limiter implements forward.Controls.
func (s *state) Limiter() *ratelimit.Limiter { return s.limiter }

func (s *state) setPaused(v bool) {
	s.mu.Lock()
	s.paused = v
	s.mu.Unlock()
	s.metrics.paused.Set(b2f(v))
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func (s *state) setSelection(txnID, sel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.selection[txnID] = sel
}

// drop forgets a workload that stopped.
func (s *state) drop(txnID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.parts[txnID] {
		s.metrics.deletePartition(p)
	}
	delete(s.parts, txnID)
	delete(s.selection, txnID)
	delete(s.halted, txnID)
	s.notifyLocked()
}

// Halted implements forward.Observer.
func (s *state) Halted(txnID string, halted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.halted[txnID] = halted
	s.notifyLocked()
}

func (s *state) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// awaitHalted waits until every running workload's session confirmed the
// pause, and reports whether they did before ctx ended.
func (s *state) awaitHalted(ctx context.Context) bool {
	for {
		s.mu.Lock()
		all := true
		for txnID := range s.parts {
			all = all && s.halted[txnID]
		}
		changed := s.changed
		s.mu.Unlock()
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// Assigned implements forward.Observer.
func (s *state) Assigned(txnID string, parts map[checkpoint.Partition]forward.PartitionInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.parts[txnID]
	cur := make(map[checkpoint.Partition]*partStatus, len(parts))
	for p, info := range parts {
		ps := old[p]
		if ps == nil {
			ps = &partStatus{}
		}
		ps.cloudTopic, ps.cp = info.CloudTopic, info.Checkpoint
		cur[p] = ps
		s.metrics.gapOffsets.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(ps.cp.GapOffsets))
	}
	for p := range old {
		if _, ok := cur[p]; !ok {
			s.metrics.deletePartition(p)
		}
	}
	s.parts[txnID] = cur
}

// Committed implements forward.Observer.
func (s *state) Committed(txnID string, c forward.Commit) {
	s.probe.MarkUp()
	now := time.Now()
	m := s.metrics
	m.txns.Inc()
	m.records.Add(float64(c.Records))
	m.bytes.Add(float64(c.Bytes))
	m.commit.Observe(c.Duration.Seconds())
	m.open.Observe(c.Open.Seconds())
	for _, g := range c.Gaps {
		lp := strconv.Itoa(int(g.Partition.Partition))
		m.gapsDetected.WithLabelValues(g.Partition.Topic, lp).Inc()
		m.gapOffsetsDetected.WithLabelValues(g.Partition.Topic, lp).Add(float64(g.Offsets()))
		if g.Reset {
			m.offsetResets.WithLabelValues(g.Partition.Topic, lp).Inc()
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	backlog := s.backlogLocked()
	if !s.prevCommit.IsZero() && backlog.records > int64(2*c.Records) && c.Bytes > 0 {
		// Saturated: this commit's rate is what the path can drain.
		rate := float64(c.Bytes) / now.Sub(s.prevCommit).Seconds()
		if s.drainRate == 0 {
			s.drainRate = rate
		} else {
			s.drainRate = 0.7*s.drainRate + 0.3*rate
		}
	}
	s.prevCommit = now
	s.lastCommit = now
	s.window = append(s.window, sample{now, c.Bytes})
	s.peakRate = max(s.peakRate, s.throughputLocked(now))
	for p, pc := range c.Partitions {
		ps := s.parts[txnID][p]
		if ps == nil {
			continue
		}
		ps.cp = pc.Checkpoint
		if pc.Records > 0 {
			mean := float64(pc.Bytes) / float64(pc.Records)
			if ps.meanBytes == 0 {
				ps.meanBytes = mean
			} else {
				ps.meanBytes = 0.8*ps.meanBytes + 0.2*mean
			}
			ps.lastForward = now
		}
		m.gapOffsets.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(ps.cp.GapOffsets))
	}
}

// Aborted implements forward.Observer.
func (s *state) Aborted(string, error) { s.metrics.aborts.Inc() }

// partitions lists every assigned partition (for the watermark monitor).
func (s *state) partitions() []checkpoint.Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []checkpoint.Partition
	for _, ps := range s.parts {
		out = slices.AppendSeq(out, maps.Keys(ps))
	}
	return out
}

// setWatermarks records edge log start and end offsets.
func (s *state) setWatermarks(starts, ends map[checkpoint.Partition]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.parts {
		for p, st := range ps {
			ls, ok1 := starts[p]
			le, ok2 := ends[p]
			if ok1 && ok2 {
				st.start, st.end, st.known = ls, le, true
			}
		}
	}
	s.updateGaugesLocked()
}

type backlog struct{ records, bytes int64 }

// meanBytesLocked is the mean record size of the bridge, for partitions
// without their own yet.
func (s *state) meanBytesLocked() float64 {
	var sum float64
	var n int
	for _, ps := range s.parts {
		for _, st := range ps {
			if st.meanBytes > 0 {
				sum += st.meanBytes
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func (st *partStatus) backlog(fallbackMean float64) (records, bytes, pendingGap int64) {
	if !st.known {
		return 0, 0, 0
	}
	from := max(st.cp.Next, st.start)
	records = max(0, st.end-from)
	mean := st.meanBytes
	if mean == 0 {
		mean = fallbackMean
	}
	pendingGap = max(0, min(st.start, st.end)-st.cp.Next)
	return records, int64(float64(records) * mean), pendingGap
}

func (s *state) backlogLocked() backlog {
	var b backlog
	mean := s.meanBytesLocked()
	for _, ps := range s.parts {
		for _, st := range ps {
			r, by, _ := st.backlog(mean)
			b.records += r
			b.bytes += by
		}
	}
	return b
}

func (s *state) throughputLocked(now time.Time) float64 {
	cut := now.Add(-throughputWindow)
	i := 0
	for i < len(s.window) && s.window[i].at.Before(cut) {
		i++
	}
	s.window = s.window[i:]
	var sum int
	for _, w := range s.window {
		sum += w.bytes
	}
	return float64(sum) / throughputWindow.Seconds()
}

// drainLocked returns the rate the drain estimate uses and the estimate:
// the rate measured while draining a backlog; before any backlog was
// drained, the highest throughput seen (a lower bound of the link's
// capacity); in both cases at most the rate limit.
func (s *state) drainLocked(b backlog) (rate float64, est time.Duration, ok bool) {
	rate = s.drainRate
	if rate == 0 {
		rate = s.peakRate
	}
	if lim := s.limiter.Rate(); lim > 0 && (rate == 0 || float64(lim) < rate) {
		rate = float64(lim)
	}
	if b.bytes == 0 {
		return rate, 0, true
	}
	if rate <= 0 {
		return 0, 0, false
	}
	return rate, time.Duration(float64(b.bytes) / rate * float64(time.Second)), true
}

func (s *state) updateGaugesLocked() {
	m := s.metrics
	mean := s.meanBytesLocked()
	for _, ps := range s.parts {
		for p, st := range ps {
			r, by, _ := st.backlog(mean)
			lp := strconv.Itoa(int(p.Partition))
			m.backlogRecords.WithLabelValues(p.Topic, lp).Set(float64(r))
			m.backlogBytes.WithLabelValues(p.Topic, lp).Set(float64(by))
		}
	}
	b := s.backlogLocked()
	_, est, ok := s.drainLocked(b)
	if ok {
		m.drainEstimate.Set(est.Seconds())
	} else {
		m.drainEstimate.Set(-1)
	}
	m.throughput.Set(s.throughputLocked(time.Now()))
}

// status builds the admin status.
func (s *state) status(worker *cefiotv1.WorkerStatus) *cefiotv1.GetBridgeStatusResponse {
	link := s.probe.State()
	out := &cefiotv1.GetBridgeStatusResponse{
		Status:                  worker,
		RateLimitBytesPerSecond: s.limiter.Rate(),
	}
	switch {
	case !link.Known:
		out.Link = cefiotv1.LinkState_LINK_STATE_UNSPECIFIED
	case link.Up:
		out.Link = cefiotv1.LinkState_LINK_STATE_UP
	default:
		out.Link = cefiotv1.LinkState_LINK_STATE_DOWN
		out.LinkError = link.Err
	}
	if link.Known {
		out.LinkSince = timestamppb.New(link.Since)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.Paused = s.paused
	now := time.Now()
	out.ThroughputBytesPerSecond = s.throughputLocked(now)
	if !s.lastCommit.IsZero() {
		out.LastCommitTime = timestamppb.New(s.lastCommit)
	}
	mean := s.meanBytesLocked()
	for _, txn := range slices.Sorted(maps.Keys(s.parts)) {
		out.TransactionalIds = append(out.TransactionalIds, txn)
		for p, st := range s.parts[txn] {
			r, by, pg := st.backlog(mean)
			ps := &cefiotv1.BridgePartitionStatus{
				SourceTopic: p.Topic, Partition: p.Partition, CloudTopic: st.cloudTopic,
				CommittedOffset: st.cp.Next, StartOffset: st.start, EndOffset: st.end,
				BacklogRecords: r, BacklogBytes: by, GapOffsets: st.cp.GapOffsets, Gaps: st.cp.Gaps, PendingGapOffsets: pg,
			}
			if !st.lastForward.IsZero() {
				ps.LastForwardTime = timestamppb.New(st.lastForward)
			}
			out.Partitions = append(out.Partitions, ps)
			out.BacklogRecords += r
			out.BacklogBytes += by
			out.GapOffsets += st.cp.GapOffsets
			out.Gaps += st.cp.Gaps
		}
	}
	slices.SortFunc(out.Partitions, func(a, b *cefiotv1.BridgePartitionStatus) int {
		if a.SourceTopic != b.SourceTopic {
			if a.SourceTopic < b.SourceTopic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	rate, est, ok := s.drainLocked(backlog{out.BacklogRecords, out.BacklogBytes})
	out.DrainRateBytesPerSecond = rate
	if ok {
		out.DrainEstimate = durationpb.New(est)
	}
	return out
}

// topics lists forwarded topics.
func (s *state) topics() *cefiotv1.ListTopicsResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	byTopic := map[string]*cefiotv1.BridgeTopic{}
	mean := s.meanBytesLocked()
	for _, ps := range s.parts {
		for p, st := range ps {
			t := byTopic[p.Topic]
			if t == nil {
				t = &cefiotv1.BridgeTopic{SourceTopic: p.Topic, CloudTopic: st.cloudTopic}
				byTopic[p.Topic] = t
			}
			t.Partitions++
			r, _, _ := st.backlog(mean)
			t.BacklogRecords += r
			t.GapOffsets += st.cp.GapOffsets
		}
	}
	out := &cefiotv1.ListTopicsResponse{}
	for _, name := range slices.Sorted(maps.Keys(byTopic)) {
		out.Topics = append(out.Topics, byTopic[name])
	}
	var sels []string
	for _, txn := range slices.Sorted(maps.Keys(s.selection)) {
		sels = append(sels, s.selection[txn])
	}
	out.Selection = joinUnique(sels)
	return out
}

func joinUnique(ss []string) string {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}
