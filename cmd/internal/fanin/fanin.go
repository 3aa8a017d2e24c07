// Package fanin measures one cloud taking frames from many sites. Each
// synthetic site is what the cloud meets of a real one: its own CA and
// identity, its own scheduler (with its etcd) and its own bridge process,
// forwarding the site's enriched frames into the site's cloud topic
// (edge-<site>.frames.enriched) under the site's ACLs. The sites share one
// edge Kafka cluster, each under its own topic prefix (the bridge's
// -edge-topic-prefix), because 50 Kafka clusters do not fit on the 2-core
// machine the numbers come from. Every site's frames are written into the
// shared edge cluster at once, and 1 or more sink replicas store them into
// one PostgreSQL index and one object store.
//
// It reports the edge feed rate, the cloud's ingest rate (frames/s until
// every site's bridge has committed every frame to the cloud), the sinks'
// storing rate (frames/s until the index holds every frame), the CPU the
// bridges, the sinks and PostgreSQL spent per frame, and the p99 of a
// camera + time search on the index it filled.
package fanin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/cmd/internal/cpu"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Config is one run.
type Config struct {
	BinDir, KafkaLibs, WorkDir string
	Sites, Replicas            int
	Frames                     int // in all, shared out over the sites
	Searches                   int // camera + time searches timed after the run
	Logger                     *slog.Logger
}

// Result is what one run measured.
type Result struct {
	Sites, Replicas int
	Frames          int
	Feed            float64       // frames/s acknowledged by the shared edge cluster
	Ingest          float64       // frames/s from the first produce to the last committed to the cloud by its bridge
	Stored          float64       // frames/s from the first produce to the last indexed
	BridgeCPU       time.Duration // per frame, every site's bridge
	SchedulerCPU    time.Duration // per frame, every site's scheduler and its etcd
	BridgeIdle      float64       // share of a core one bridge uses with nothing to forward
	SinkCPU         time.Duration // per stored frame, every sink replica
	PostgresCPU     time.Duration // per stored frame, the server and its backends
	SearchP50       time.Duration
	SearchP99       time.Duration
}

// Run starts a stack (the edge idle), produces the frames and measures.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Sites: cfg.Sites, Replicas: cfg.Replicas}
	perSite := max(cfg.Frames/cfg.Sites, 1)
	res.Frames = perSite * cfg.Sites
	dir := filepath.Join(cfg.WorkDir, fmt.Sprintf("fanin-%d-%d", cfg.Sites, cfg.Replicas))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// The edge site's own camera sends next to nothing (one motion frame);
	// only the synthetic sites' cameras are counted.
	video := filepath.Join(dir, "still.avi")
	if err := videogen.Write(video, videogen.Spec{Width: 64, Height: 64, Frames: 3, FPS: 25, MotionStart: 1, MotionEnd: 1}); err != nil {
		return res, err
	}
	sites := make([]string, cfg.Sites)
	for i := range sites {
		sites[i] = siteName(i)
	}
	stack, err := localstack.Start(ctx, localstack.Config{
		BinDir: cfg.BinDir, RunDir: filepath.Join(dir, "run"), KafkaLibs: cfg.KafkaLibs, Video: video,
		Logger: cfg.Logger, Index: localstack.IndexPostgres, SinkReplicas: cfg.Replicas, RemoteSites: sites,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = stack.Stop(stopCtx)
	}()
	edge, err := startSharedEdge(ctx, cfg, dir, stack, sites)
	if err != nil {
		return res, err
	}
	defer edge.stop()
	picture, err := sampleJPEG()
	if err != nil {
		return res, err
	}
	sink, closeSink, err := sinkClient(stack)
	if err != nil {
		return res, err
	}
	defer closeSink()

	pids := map[string]int{}
	for _, name := range stack.SinkNames() {
		pids[name] = stack.PID(name)
	}
	meter, err := cpu.Start(pids)
	if err != nil {
		return res, err
	}
	if res.BridgeIdle, err = idleShare(ctx, edge.bridgePIDs(), idleWindow); err != nil {
		return res, err
	}
	bridgeMeter, err := cpu.Start(edge.bridgePIDs())
	if err != nil {
		return res, err
	}
	schedulerMeter, err := cpu.Start(edge.schedulerPIDs())
	if err != nil {
		return res, err
	}
	pgBefore, err := cpu.TreeTime(stack.Postgres().PID())
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := produceSites(ctx, edge.cluster.Conn(), sites, perSite, "r1", picture); err != nil {
		return res, err
	}
	res.Feed = float64(res.Frames) / time.Since(start).Seconds()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := edge.awaitForwarded(wctx, int64(perSite)); err != nil {
		return res, err
	}
	res.Ingest = float64(res.Frames) / time.Since(start).Seconds()
	if err := awaitIndexed(wctx, sink, int64(res.Frames)); err != nil {
		return res, err
	}
	res.Stored = float64(res.Frames) / time.Since(start).Seconds()
	if res.SinkCPU, err = meter.Total(); err != nil {
		return res, err
	}
	if res.BridgeCPU, err = bridgeMeter.Total(); err != nil {
		return res, err
	}
	res.BridgeCPU /= time.Duration(res.Frames)
	if res.SchedulerCPU, err = schedulerMeter.Total(); err != nil {
		return res, err
	}
	res.SchedulerCPU /= time.Duration(res.Frames)
	pgAfter, err := cpu.TreeTime(stack.Postgres().PID())
	if err != nil {
		return res, err
	}
	res.SinkCPU /= time.Duration(res.Frames)
	res.PostgresCPU = (pgAfter - pgBefore) / time.Duration(res.Frames)
	res.SearchP50, res.SearchP99, err = searchLatency(ctx, sink, cfg.Sites, cfg.Searches)
	return res, err
}

// idleWindow is how long the bridges' idle cost is metered.
const idleWindow = 5 * time.Second

// idleShare meters the processes for window, with nothing to do, and
// returns the share of a core one of them used on average.
func idleShare(ctx context.Context, pids map[string]int, window time.Duration) (float64, error) {
	meter, err := cpu.Start(pids)
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	used, err := meter.Total()
	if err != nil {
		return 0, err
	}
	return used.Seconds() / window.Seconds() / float64(len(pids)), nil
}

func sinkClient(stack *localstack.Stack) (cefiotv1.SinkServiceClient, func(), error) {
	conn, err := grpc.NewClient(stack.ServiceGRPC("sink"), stack.Operator().DialOption())
	if err != nil {
		return nil, nil, err
	}
	return cefiotv1.NewSinkServiceClient(conn), func() { _ = conn.Close() }, nil
}

// awaitIndexed waits until the index holds n frames of the synthetic
// sites' cameras.
func awaitIndexed(ctx context.Context, sink cefiotv1.SinkServiceClient, n int64) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last int64
	for {
		st, err := sink.GetStats(ctx, &cefiotv1.GetStatsRequest{})
		if err == nil {
			last = 0
			for _, c := range st.GetCameras() {
				if strings.HasPrefix(c.GetCameraId(), "site-") {
					last += c.GetFrames()
				}
			}
			if last >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d frames indexed (last %d): %w", n, last, ctx.Err())
		case <-t.C:
		}
	}
}

// searchLatency times n searches of one camera over a time window, as the
// console asks them, through the sink's API.
func searchLatency(ctx context.Context, sink cefiotv1.SinkServiceClient, sites, n int) (p50, p99 time.Duration, err error) {
	if n <= 0 {
		return 0, 0, errors.New("no searches")
	}
	var took []time.Duration
	from := time.Now().Add(-time.Hour)
	for i := range n {
		camera := fmt.Sprintf("%s-cam-%d", siteName(i%sites), i%4)
		begin := time.Now()
		resp, err := sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{
			CameraId: camera, StartTime: timestamppb.New(from), EndTime: timestamppb.New(time.Now().Add(time.Hour)), PageSize: 100,
		})
		if err != nil {
			return 0, 0, fmt.Errorf("search %s: %w", camera, err)
		}
		took = append(took, time.Since(begin))
		if len(resp.GetFrames()) == 0 {
			return 0, 0, fmt.Errorf("search %s found nothing", camera)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[min(len(took)-1, len(took)*99/100)], nil
}

// Table prints results side by side.
func Table(rs []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %-9s %-8s %-10s %-11s %-12s %-17s %-18s %-21s %-15s %-19s %-11s %-11s\n",
		"sites", "replicas", "frames", "feed fr/s", "cloud fr/s", "stored fr/s", "bridge idle core", "bridges CPU/frame", "schedulers CPU/frame", "sink CPU/frame", "postgres CPU/frame", "search p50", "search p99")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-6d %-9d %-8d %-10.0f %-11.0f %-12.0f %-17s %-18s %-21s %-15s %-19s %-11s %-11s\n",
			r.Sites, r.Replicas, r.Frames, r.Feed, r.Ingest, r.Stored, fmt.Sprintf("%.1f %%", 100*r.BridgeIdle), ms(r.BridgeCPU), ms(r.SchedulerCPU), ms(r.SinkCPU), ms(r.PostgresCPU), ms(r.SearchP50), ms(r.SearchP99))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
