// Package fanin measures one cloud taking frames from many sites: each
// synthetic site writes enriched motion frames into its own cloud topic
// (edge-<site>.frames.enriched, as its bridge would), all sites at once,
// and 1 or more sink replicas store them into one PostgreSQL index and
// one object store. It reports the cloud's ingest rate (frames/s
// acknowledged by the cloud cluster), the sinks' storing rate (frames/s
// until the index holds every frame), the CPU the sinks and PostgreSQL
// spent per stored frame, and the p99 of a camera + time search on the
// index it filled.
//
// The sites are producers, not bridge processes: a bridge per site (with
// its own edge cluster, etcd and scheduler) does not fit 50 times on the
// 2-core machine the numbers come from; the bridge's own rate is
// cefiot-bench-bridge's.
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
	Ingest          float64       // frames/s acknowledged by the cloud cluster
	Stored          float64       // frames/s from the first produce to the last indexed
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
	stack, err := localstack.Start(ctx, localstack.Config{
		BinDir: cfg.BinDir, RunDir: filepath.Join(dir, "run"), KafkaLibs: cfg.KafkaLibs, Video: video,
		Logger: cfg.Logger, Index: localstack.IndexPostgres, SinkReplicas: cfg.Replicas,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = stack.Stop(stopCtx)
	}()
	conn := stack.Cloud.Conn()
	if err := prepareSites(ctx, conn, cfg.Sites); err != nil {
		return res, err
	}
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
	pgBefore, err := cpu.TreeTime(stack.Postgres().PID())
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := produceSites(ctx, conn, cfg.Sites, perSite, "r1", picture); err != nil {
		return res, err
	}
	res.Ingest = float64(res.Frames) / time.Since(start).Seconds()
	if err := awaitIndexed(ctx, sink, int64(res.Frames)); err != nil {
		return res, err
	}
	res.Stored = float64(res.Frames) / time.Since(start).Seconds()
	used, err := meter.Used()
	if err != nil {
		return res, err
	}
	for _, d := range used {
		res.SinkCPU += d
	}
	pgAfter, err := cpu.TreeTime(stack.Postgres().PID())
	if err != nil {
		return res, err
	}
	res.SinkCPU /= time.Duration(res.Frames)
	res.PostgresCPU = (pgAfter - pgBefore) / time.Duration(res.Frames)
	res.SearchP50, res.SearchP99, err = searchLatency(ctx, sink, cfg.Sites, cfg.Searches)
	return res, err
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
	fmt.Fprintf(&b, "%-6s %-9s %-8s %-14s %-14s %-16s %-18s %-12s %-12s\n",
		"sites", "replicas", "frames", "ingest fr/s", "stored fr/s", "sink CPU/frame", "postgres CPU/frame", "search p50", "search p99")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-6d %-9d %-8d %-14.0f %-14.0f %-16s %-18s %-12s %-12s\n",
			r.Sites, r.Replicas, r.Frames, r.Ingest, r.Stored, ms(r.SinkCPU), ms(r.PostgresCPU), ms(r.SearchP50), ms(r.SearchP99))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
