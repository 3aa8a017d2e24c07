package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/services/bridge/internal/checkpoint"
	"github.com/cefiot/cefiot/services/bridge/internal/ratelimit"
	"github.com/cefiot/cefiot/services/bridge/internal/selection"
)

// The harness of the session tests: fake Kafka clusters, edge records sent
// and cloud records read back, and sessions run in the background.

const (
	site      = "door"
	edgeTopic = "frames"
	// cloudTopic is edge-<site>.<topic>, spelled out to pin the naming.
	cloudTopic = "edge-door.frames"
	edgeParts  = 2
)

func newCluster(t *testing.T, opts ...kfake.Opt) kafkax.Conn {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return kafkax.Conn{Bootstrap: strings.Join(c.ListenAddrs(), ",")}
}

// record is what the tests compare: a record as sent to the edge and as
// read back from the cloud.
type record struct {
	Partition int32
	Key       string
	Value     string
	Headers   string
	Timestamp int64 // Unix milliseconds
}

func headersString(hs []kafka.Header) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s=%q;", h.Key, h.Value)
	}
	return b.String()
}

// produceEdge writes n records to each edge partition (non-transactional)
// and returns them. Keys, values and headers are distinct per record; seq
// distinguishes calls.
func produceEdge(t *testing.T, bootstrap kafkax.Conn, seq string, n int) []record {
	t.Helper()
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{"linger.ms": 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	topic := edgeTopic
	dr := make(chan kafka.Event, n*edgeParts)
	var sent []record
	ts := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		for part := range int32(edgeParts) {
			r := record{
				Partition: part,
				Key:       fmt.Sprintf("key-%s-%d-%d", seq, part, i),
				Value:     fmt.Sprintf("value-%s-%d-%d-%s", seq, part, i, strings.Repeat("x", i%50)),
				Timestamp: ts.Add(time.Duration(i) * time.Millisecond).UnixMilli(),
			}
			hs := []kafka.Header{{Key: "seq", Value: []byte(seq)}, {Key: "n", Value: fmt.Appendf(nil, "%d", i)}}
			r.Headers = headersString(hs)
			err := p.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
				Key:            []byte(r.Key), Value: []byte(r.Value), Headers: hs,
				Timestamp: time.UnixMilli(r.Timestamp),
			}, dr)
			if err != nil {
				t.Fatalf("produce to the edge: %v", err)
			}
			sent = append(sent, r)
		}
	}
	for range len(sent) {
		select {
		case e := <-dr:
			if m := e.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("produce to the edge: %v", m.TopicPartition.Error)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("edge records not delivered")
		}
	}
	return sent
}

// readCloud reads topic of the cloud cluster (read_committed) from the
// beginning to its end.
func readCloud(ctx context.Context, t *testing.T, bootstrap kafkax.Conn, topic string) []record {
	t.Helper()
	admin, err := kafka.NewAdminClient(kafkax.Config(bootstrap, nil))
	if err != nil {
		t.Fatal(err)
	}
	n, err := kafkax.PartitionCount(admin, topic)
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kafka.NewConsumer(kafkax.Config(bootstrap, map[string]any{
		"group.id":             "test-reader",
		"enable.auto.commit":   false,
		"isolation.level":      "read_committed",
		"enable.partition.eof": true,
		// The default (500 ms) makes every read from kfake take about a
		// second.
		"fetch.wait.max.ms": 20,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := map[int32]bool{}
	var assign []kafka.TopicPartition
	for part := range int32(n) {
		_, hw, err := c.QueryWatermarkOffsets(topic, part, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if hw > 0 {
			open[part] = true
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: part, Offset: kafka.OffsetBeginning})
		}
	}
	if err := c.Assign(assign); err != nil {
		t.Fatal(err)
	}
	var out []record
	for len(open) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions not read to their end: %v)", topic, ctx.Err(), open)
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				t.Fatalf("read %s: %v", topic, e.TopicPartition.Error)
			}
			out = append(out, record{
				Partition: e.TopicPartition.Partition, Key: string(e.Key), Value: string(e.Value),
				Headers: headersString(e.Headers), Timestamp: e.Timestamp.UnixMilli(),
			})
		case kafka.PartitionEOF:
			delete(open, e.Partition)
		}
	}
	return out
}

// sameRecords fails t unless got holds exactly want, in order per partition.
func sameRecords(t *testing.T, got, want []record) {
	t.Helper()
	byPart := func(rs []record) map[int32][]record {
		m := map[int32][]record{}
		for _, r := range rs {
			m[r.Partition] = append(m[r.Partition], r)
		}
		return m
	}
	g, w := byPart(got), byPart(want)
	for part := range int32(edgeParts) {
		if len(g[part]) != len(w[part]) {
			t.Errorf("partition %d: got %d records, want %d", part, len(g[part]), len(w[part]))
		}
		for i := range min(len(g[part]), len(w[part])) {
			if g[part][i] != w[part][i] {
				t.Errorf("partition %d, record %d: got %+v, want %+v", part, i, g[part][i], w[part][i])
				break
			}
		}
	}
	for part := range g {
		if part >= edgeParts {
			t.Errorf("records on partition %d, which the edge does not have", part)
		}
	}
}

type controls struct{ lim *ratelimit.Limiter }

func (c controls) Paused() bool                { return false }
func (c controls) Limiter() *ratelimit.Limiter { return c.lim }

// observer records what a session reports.
type observer struct {
	mu       sync.Mutex
	assigned map[checkpoint.Partition]PartitionInfo
	next     map[checkpoint.Partition]int64 // from the commits
	commits  int
	aborted  []error
	cps      map[checkpoint.Partition]checkpoint.Record // the last committed
	// longestOpen is the longest a committed transaction was open.
	longestOpen time.Duration
}

func (o *observer) Assigned(_ string, parts map[checkpoint.Partition]PartitionInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.assigned = parts
}

func (o *observer) Committed(_ string, c Commit) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.commits++
	o.longestOpen = max(o.longestOpen, c.Open)
	if o.next == nil {
		o.next = map[checkpoint.Partition]int64{}
	}
	if o.cps == nil {
		o.cps = map[checkpoint.Partition]checkpoint.Record{}
	}
	for p, pc := range c.Partitions {
		o.next[p] = pc.Checkpoint.Next
		o.cps[p] = pc.Checkpoint
	}
}

func (o *observer) Halted(string, bool) {}

func (o *observer) Aborted(_ string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.aborted = append(o.aborted, err)
}

// forwarded reports whether the commits moved every edge partition to next.
func (o *observer) forwarded(next int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for part := range int32(edgeParts) {
		if o.next[checkpoint.Partition{Topic: edgeTopic, Partition: part}] < next {
			return false
		}
	}
	return true
}

// progressed reports whether the commits moved some edge partition to next.
func (o *observer) progressed(next int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.next {
		if n >= next {
			return true
		}
	}
	return false
}

// at reports whether the commits moved every edge partition to next in
// its offset epoch epoch.
func (o *observer) at(epoch, next int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for part := range int32(edgeParts) {
		cp := o.cps[checkpoint.Partition{Topic: edgeTopic, Partition: part}]
		if cp.Epoch != epoch || cp.Next < next {
			return false
		}
	}
	return true
}

func (o *observer) isAssigned() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.assigned) > 0
}

// waitFor polls cond until it holds, failing t at ctx's end.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// testLogger collects the sessions' logs and shows them if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("session logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testConfig(t *testing.T, edge, cloud kafkax.Conn) Config {
	t.Helper()
	sel, err := selection.FromList(edgeTopic)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Site: site, TransactionID: "bridge-door-a",
		EdgeBootstrap: edge, CloudBootstrap: cloud, Selection: sel,
		BatchRecords: 50, BatchBytes: 1 << 20, BatchWait: 100 * time.Millisecond,
		TopicRefresh: 500 * time.Millisecond, TransactionTimeout: 10 * time.Second,
	}
}

// running is a session started by start.
type running struct {
	obs    *observer
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
}

// start runs a session with lim as its byte rate limiter (nil: unlimited).
func start(ctx context.Context, t *testing.T, cfg Config, lim *ratelimit.Limiter) *running {
	if lim == nil {
		lim = ratelimit.New(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &running{obs: &observer{}, cancel: cancel, done: make(chan struct{})}
	logger := testLogger(t).With("session", fmt.Sprintf("%p", r))
	go func() {
		defer close(r.done)
		r.err = Run(ctx, cfg, controls{lim}, r.obs, logger)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// stop ends the session and waits for Run to return, which must be because
// of the cancellation.
func (r *running) stop(ctx context.Context, t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Fatalf("session ended with %v, want a clean stop", r.err)
		}
	case <-ctx.Done():
		t.Fatal("session does not stop")
	}
}

// recreateEdgeTopic deletes the edge topic and creates it again, empty,
// with the same partitions (a new topic id).
func recreateEdgeTopic(ctx context.Context, t *testing.T, edge kafkax.Conn) {
	t.Helper()
	admin, err := kafka.NewAdminClient(kafkax.Config(edge, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.DeleteTopics(ctx, []string{edgeTopic})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("delete the edge topic: %v %v", err, res)
	}
	for {
		created, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: edgeTopic, NumPartitions: edgeParts, ReplicationFactor: 1}})
		if err == nil && created[0].Error.Code() == kafka.ErrNoError {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("create the edge topic again: %v %v", err, created)
		}
		time.Sleep(50 * time.Millisecond) // the deletion is still under way
	}
}
