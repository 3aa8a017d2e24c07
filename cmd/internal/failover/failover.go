// Package failover is the failover benchmark: on a simulated three-node
// edge (real processes, real Kafka, real etcd) with frames flowing, it
// SIGKILLs every process of the node that runs enrich and measures the time
// until enrich produces on another node; and it moves enrich from the edge
// to the cloud and back, measuring the gap between the last frame enriched
// on one side and the first on the other.
package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/sitemove"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Config of a benchmark run.
type Config struct {
	BinDir, KafkaLibs, RunDir string
	Trials                    int
	Moves                     int // edge->cloud->edge round trips (with the first TTL)
	LeaseTTLs                 []time.Duration
	Rate                      int // frames per second fed to frames.raw
	Logger                    *slog.Logger
	Out                       io.Writer
}

// Anchors the table compares with.
const (
	kubernetesDefault = 350 * time.Second // 50 s node-monitor grace + 300 s not-ready toleration
	clientGoElection  = 17 * time.Second  // 15 s lease duration + 2 s retry period
)

// Result is what one stack (one lease TTL) measured.
type Result struct {
	ttl time.Duration
	// Failovers are the trials' times from the SIGKILL of enrich's node
	// until a frame enriched on another node was committed.
	Failovers    []time.Duration
	outs, backs  []time.Duration
	fencePauses  float64 // on the workers alive at the end
	renewFailure float64
}

// Run runs the benchmark for every lease TTL and prints the table.
func Run(ctx context.Context, cfg Config) error {
	video := filepath.Join(cfg.RunDir, "idle.avi")
	if err := videogen.Write(video, videogen.Spec{Width: 64, Height: 64, Frames: 2, FPS: 25, MotionStart: 1, MotionEnd: 1}); err != nil {
		return err
	}
	var results []Result
	for i, ttl := range cfg.LeaseTTLs {
		moves := 0
		if i == 0 {
			moves = cfg.Moves
		}
		r, err := runOne(ctx, cfg, video, filepath.Join(cfg.RunDir, fmt.Sprintf("run-%d", i)), ttl, moves)
		if err != nil {
			return fmt.Errorf("lease TTL %v: %w", ttl, err)
		}
		results = append(results, r)
	}
	printTable(cfg, results)
	return nil
}

// Failovers measures cfg.Trials failovers of enrich on a fresh stack whose
// workers hold leases of ttl (the benchmark's first row, without moves).
func Failovers(ctx context.Context, cfg Config, ttl time.Duration) (Result, error) {
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return Result{}, err
	}
	video := filepath.Join(cfg.RunDir, "idle.avi")
	if err := videogen.Write(video, videogen.Spec{Width: 64, Height: 64, Frames: 2, FPS: 25, MotionStart: 1, MotionEnd: 1}); err != nil {
		return Result{}, err
	}
	return runOne(ctx, cfg, video, filepath.Join(cfg.RunDir, "failovers"), ttl, 0)
}

// Percentile is the p-th percentile (p in percent, 0..100) of ds, nearest
// rank: 99 of 20 values is the largest.
func Percentile(ds []time.Duration, p float64) time.Duration { return percentile(ds, p) }

// runOne starts a stack with worker leases of ttl and measures on it.
func runOne(ctx context.Context, cfg Config, video, runDir string, ttl time.Duration, moves int) (Result, error) {
	res := Result{ttl: ttl}
	var nodes []localstack.NodeSpec
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, localstack.NodeSpec{Name: "node-" + strconv.Itoa(i), Labels: "zone=edge", Services: []string{"enrich", "bridge"}})
	}
	stack, err := localstack.Start(ctx, localstack.Config{
		BinDir: cfg.BinDir, RunDir: runDir, KafkaLibs: cfg.KafkaLibs, Video: video,
		Nodes: nodes, EdgeSchedulers: 2, CloudEnrich: true, LeaseTTL: ttl, Logger: cfg.Logger,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = stack.Stop(stopCtx)
	}()
	edge, closeEdge, err := client(stack.SchedulerGRPC("scheduler-edge"), stack.Operator().DialOption())
	if err != nil {
		return res, err
	}
	defer closeEdge()
	cloud, closeCloud, err := client(stack.SchedulerGRPC("scheduler-cloud"), stack.Operator().DialOption())
	if err != nil {
		return res, err
	}
	defer closeCloud()

	fctx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feedErr := make(chan error, 1)
	go func() { feedErr <- feed(fctx, stack.Edge.Conn(), cfg.Rate) }()
	edgeObs, err := observe(ctx, stack.Edge.Conn(), pipeline.TopicFramesEnriched)
	if err != nil {
		return res, err
	}
	defer edgeObs.close()
	cloudObs, err := observe(ctx, stack.Cloud.Conn(), pipeline.CloudTopic("edge", pipeline.TopicFramesEnriched))
	if err != nil {
		return res, err
	}
	defer cloudObs.close()
	if _, err := edgeObs.waitNode(ctx, time.Time{}, func(string) bool { return true }, 2*time.Minute); err != nil {
		return res, fmt.Errorf("enrich never produced: %w", err)
	}

	for i := 0; i < cfg.Trials; i++ {
		d, err := trial(ctx, stack, edge, edgeObs)
		if err != nil {
			return res, fmt.Errorf("trial %d: %w", i+1, err)
		}
		res.Failovers = append(res.Failovers, d)
		cfg.Logger.Info("failover trial", "ttl", ttl, "n", i+1, "seconds", d.Seconds())
	}
	for i := 0; i < moves; i++ {
		out, back, err := roundTrip(ctx, edge, cloud, cloudObs, cfg.Logger)
		if err != nil {
			return res, fmt.Errorf("move %d: %w", i+1, err)
		}
		res.outs, res.backs = append(res.outs, out), append(res.backs, back)
	}
	stopFeed()
	if err := <-feedErr; err != nil && !errors.Is(err, context.Canceled) {
		return res, fmt.Errorf("feeding frames: %w", err)
	}
	res.fencePauses, res.renewFailure = workerCounters(ctx, edge, stack.OperatorHTTP())
	return res, nil
}

// workerCounters sums the lease counters of the live edge workers.
func workerCounters(ctx context.Context, edge cefiotv1.SchedulerServiceClient, hc *http.Client) (pauses, renewFailures float64) {
	ws, err := edge.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
	if err != nil {
		return 0, 0
	}
	for _, w := range ws.GetWorkers() {
		m := scrape(ctx, hc, "https://"+w.GetAdminHttpAddress()+"/metrics")
		pauses += m["cefiot_worker_fence_pauses_total"]
		renewFailures += m["cefiot_worker_lease_renew_failures_total"]
	}
	return pauses, renewFailures
}

// scrape reads plain (label-less) samples of a /metrics page.
func scrape(ctx context.Context, hc *http.Client, url string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		var name string
		var v float64
		if !strings.HasPrefix(line, "#") && strings.Count(line, " ") == 1 {
			if _, err := fmt.Sscanf(line, "%s %g", &name, &v); err == nil {
				out[name] = v
			}
		}
	}
	return out
}

func client(addr string, cred grpc.DialOption) (cefiotv1.SchedulerServiceClient, func(), error) {
	conn, err := grpc.NewClient(addr, cred)
	if err != nil {
		return nil, nil, err
	}
	return cefiotv1.NewSchedulerServiceClient(conn), func() { conn.Close() }, nil
}

// owner returns the node whose worker runs enrich (its claim matches the
// assignment).
func owner(ctx context.Context, edge cefiotv1.SchedulerServiceClient) (string, int64, error) {
	r, err := edge.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: "enrich"})
	if err != nil {
		return "", 0, err
	}
	a, c := r.GetAssignment(), r.GetClaim()
	if a == nil || c == nil || c.GetEpoch() != a.GetEpoch() || c.GetWorkerId() != a.GetWorkerId() {
		return "", 0, nil
	}
	return c.GetNode(), a.GetEpoch(), nil
}

// trial kills the node running enrich and returns the time until a frame
// enriched on another node is committed; then it restarts the node.
func trial(ctx context.Context, stack *localstack.Stack, edge cefiotv1.SchedulerServiceClient, obs *observer) (time.Duration, error) {
	var node string
	for deadline := time.Now().Add(time.Minute); node == ""; {
		n, _, err := owner(ctx, edge)
		if err == nil && n != "" {
			node = n
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("enrich is not running (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Frames flow through the current owner right now.
	if _, err := obs.waitNode(ctx, time.Now(), func(n string) bool { return n == node }, time.Minute); err != nil {
		return 0, err
	}
	kill := time.Now()
	stack.KillNode(node)
	at, err := obs.waitNode(ctx, kill, func(n string) bool { return n != node }, time.Minute)
	if err != nil {
		return 0, err
	}
	if err := stack.StartNode(node); err != nil {
		return 0, err
	}
	// Wait until the restarted node's workers are registered again.
	for deadline := time.Now().Add(time.Minute); ; {
		ws, err := edge.ListWorkers(ctx, &cefiotv1.ListWorkersRequest{})
		n := 0
		for _, w := range ws.GetWorkers() {
			if w.GetNode() == node && w.GetRegisteredTime().AsTime().After(kill) {
				n++
			}
		}
		if err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("node %s did not come back", node)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return at.Sub(kill), nil
}

// roundTrip moves enrich edge->cloud and back. Each gap is from the last
// frame enriched on the old side to the first enriched on the new side
// (negative: the new side started while the old one was still finishing
// the frames before the handoff marker).
func roundTrip(ctx context.Context, edge, cloud cefiotv1.SchedulerServiceClient, obs *observer, logger *slog.Logger) (out, back time.Duration, err error) {
	home := sitemove.Site{Name: "edge", Client: edge}
	remote := sitemove.Site{Name: "cloud", Client: cloud}
	isCloud := func(n string) bool { return n == "cloud" }
	isEdge := func(n string) bool { return n != "cloud" }
	start := time.Now()
	if out, err = moveAndMeasure(ctx, home, remote, "cloud", obs, isEdge, isCloud); err != nil {
		return 0, 0, err
	}
	if back, err = moveAndMeasure(ctx, home, remote, "edge", obs, isCloud, isEdge); err != nil {
		return 0, 0, err
	}
	logger.Info("move round trip", "edge_to_cloud_gap", out, "cloud_to_edge_gap", back, "took", time.Since(start))
	return out, back, nil
}

func moveAndMeasure(ctx context.Context, home, remote sitemove.Site, to string, obs *observer, old, neu func(string) bool) (time.Duration, error) {
	start := time.Now()
	if _, err := sitemove.Move(ctx, home, remote, "enrich", to, nil); err != nil {
		return 0, err
	}
	done := time.Now()
	// The old side finished before Move returned; wait until frames of the
	// new side have kept arriving for a while, so the old side's last
	// frames (forwarded by the bridge) have arrived too.
	if _, err := obs.waitNode(ctx, done.Add(2*time.Second), neu, 2*time.Minute); err != nil {
		return 0, err
	}
	lastOld := obs.lastEnrichedBy(old, done)
	firstNew := obs.firstEnrichedBy(neu, start)
	if lastOld.IsZero() || firstNew.IsZero() {
		return 0, fmt.Errorf("move to %s: no frames seen on one side", to)
	}
	return firstNew.Sub(lastOld), nil
}

// feed produces small valid frames into frames.raw at rate per second.
func feed(ctx context.Context, bootstrap kafkax.Conn, rate int) error {
	p, err := kafka.NewProducer(kafkax.Config(bootstrap, map[string]any{"enable.idempotence": true, "acks": "all", "linger.ms": 5}))
	if err != nil {
		return err
	}
	defer p.Close()
	go func() {
		for range p.Events() {
		}
	}()
	var buf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(1, 1, color.Gray{Y: 200})
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		return err
	}
	topic := pipeline.TopicFramesRaw
	if _, err := kafkax.EnsureTopic(ctx, bootstrap, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		return err
	}
	epoch := uint64(time.Now().UnixNano())
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		select {
		case <-ctx.Done():
			p.Flush(5000)
			return ctx.Err()
		case <-tick.C:
		}
		id := fmt.Sprintf("bench_%d_%08d", epoch, seq)
		f := &cefiotv1.Frame{FrameId: id, CameraId: "bench", SessionEpoch: epoch, Sequence: seq,
			CaptureTime: timestamppb.Now(), Width: 32, Height: 24, MotionScore: 0.5, Jpeg: buf.Bytes()}
		v, _ := proto.Marshal(f)
		if err := kafkax.Produce(ctx, p, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte("bench-" + strconv.FormatUint(seq%3, 10)), Value: v,
			Headers: []kafka.Header{{Key: pipeline.HeaderFrameID, Value: []byte(id)}},
		}); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// seen is one committed enriched frame as the observer saw it.
type seen struct {
	node     string
	arrived  time.Time // when the observer read it (committed by then)
	enriched time.Time // when enrich made it
}

// observer reads an enriched topic (read_committed) as it grows.
type observer struct {
	mu     sync.Mutex
	seen   []seen
	notify chan struct{}
	stop   func()
}

func observe(ctx context.Context, bootstrap kafkax.Conn, topic string) (*observer, error) {
	c, err := kafka.NewConsumer(kafkax.Config(bootstrap, map[string]any{
		"group.id": "cefiot-failover-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36), "isolation.level": "read_committed",
		"auto.offset.reset": "latest", "enable.auto.commit": false, "fetch.wait.max.ms": 10,
		"topic.metadata.refresh.interval.ms": 1000,
	}))
	if err != nil {
		return nil, err
	}
	if _, err := kafkax.EnsureTopic(ctx, bootstrap, kafkax.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Subscribe(topic, nil); err != nil {
		c.Close()
		return nil, err
	}
	octx, cancel := context.WithCancel(ctx)
	o := &observer{notify: make(chan struct{})}
	done := make(chan struct{})
	o.stop = func() { cancel(); <-done; c.Close() }
	go func() {
		defer close(done)
		for octx.Err() == nil {
			ev := c.Poll(20)
			m, ok := ev.(*kafka.Message)
			if !ok {
				continue
			}
			ef := &cefiotv1.EnrichedFrame{}
			if proto.Unmarshal(m.Value, ef) != nil || ef.GetFrame().GetCameraId() != "bench" {
				continue
			}
			o.mu.Lock()
			o.seen = append(o.seen, seen{node: ef.GetEnrichNode(), arrived: time.Now(), enriched: ef.GetEnrichTime().AsTime()})
			close(o.notify)
			o.notify = make(chan struct{})
			o.mu.Unlock()
		}
	}()
	return o, nil
}

func (o *observer) close() { o.stop() }

// waitNode waits for the first frame that arrived after since from a node
// match accepts, and returns its arrival time.
func (o *observer) waitNode(ctx context.Context, since time.Time, match func(string) bool, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		for _, s := range o.seen {
			if s.arrived.After(since) && match(s.node) {
				o.mu.Unlock()
				return s.arrived, nil
			}
		}
		ch := o.notify
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline:
			return time.Time{}, fmt.Errorf("no frame from the expected node within %v", timeout)
		}
	}
}

// lastEnrichedBy is the latest enrich time of a matching frame before t.
func (o *observer) lastEnrichedBy(match func(string) bool, before time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	for _, s := range o.seen {
		if match(s.node) && s.enriched.Before(before) && s.enriched.After(last) {
			last = s.enriched
		}
	}
	return last
}

// firstEnrichedBy is the earliest enrich time of a matching frame after t.
func (o *observer) firstEnrichedBy(match func(string) bool, after time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first time.Time
	for _, s := range o.seen {
		if match(s.node) && s.enriched.After(after) && (first.IsZero() || s.enriched.Before(first)) {
			first = s.enriched
		}
	}
	return first
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func printTable(cfg Config, results []Result) {
	w := cfg.Out
	fmt.Fprintf(w, "\nFailover: SIGKILL of every process of the node running enrich -> enrich producing on another node\n")
	fmt.Fprintf(w, "(%d trials per row, 3 edge nodes, %d frames/s flowing, measured at a read_committed consumer;\n", cfg.Trials, cfg.Rate)
	fmt.Fprintf(w, " edge etcd with 50 ms heartbeat / 500 ms election, so leases down to 1 s are honoured)\n\n")
	fmt.Fprintf(w, "%-48s %9s %9s %9s %13s %13s\n", "", "p50", "p99", "max", "vs K8s (p99)", "vs client-go")
	best := time.Duration(math.MaxInt64)
	for _, r := range results {
		p99 := percentile(r.Failovers, 99)
		best = min(best, p99)
		fmt.Fprintf(w, "%-48s %9s %9s %9s %12.0fx %12.1fx\n", fmt.Sprintf("cefiot, worker lease TTL %v", r.ttl),
			secs(percentile(r.Failovers, 50)), secs(p99), secs(percentile(r.Failovers, 100)),
			kubernetesDefault.Seconds()/p99.Seconds(), clientGoElection.Seconds()/p99.Seconds())
	}
	fmt.Fprintf(w, "%-48s %9s %9s %9s\n", "Kubernetes defaults (50 s grace + 300 s evict)", "≈350 s", "≈350 s", "≈350 s")
	fmt.Fprintf(w, "%-48s %9s %9s %9s\n", "client-go leader election (15 s lease + 2 s)", "≤17 s", "≤17 s", "≤17 s")
	for _, r := range results {
		verdict := "met"
		if percentile(r.Failovers, 99) > 3*time.Second {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "\nlease TTL %v: target p99 ≤ 3 s %s; fence pauses on surviving workers: %.0f (lease renewal failures: %.0f)", r.ttl, verdict, r.fencePauses, r.renewFailure)
	}
	fmt.Fprintln(w)
	r := results[0]
	if len(r.outs) > 0 {
		fmt.Fprintf(w, "\nCross-site move of enrich while frames flow (%d round trips, lease TTL %v): last frame enriched on one side -> first on the other\n", len(r.outs), r.ttl)
		fmt.Fprintf(w, "(negative: the new side was already enriching while the old one finished the frames before the marker)\n\n")
		fmt.Fprintf(w, "%-20s %10s %10s\n", "", "p50", "max")
		fmt.Fprintf(w, "%-20s %10s %10s\n", "edge -> cloud", secs(percentile(r.outs, 50)), secs(percentile(r.outs, 100)))
		fmt.Fprintf(w, "%-20s %10s %10s\n", "cloud -> edge", secs(percentile(r.backs, 50)), secs(percentile(r.backs, 100)))
	}
	fmt.Fprintln(w)
}
