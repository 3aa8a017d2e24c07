// Command cefiot-dataplane-bench measures the data plane end to end on the
// local default (real Kafka clusters, real service processes). A generated
// 768x576 video in which every frame after the first has motion is fed to
// 1 camera and then to N cameras (default 4) of one capture process. It
// prints side by side: throughput (stored frames per second, the video read
// as fast as it decodes, first capture time to last stored time); latency
// (p50/p99 of stored_time - capture_time, the video paced at its 25 fps,
// the first 3 s of each camera left out while the pipeline starts); and the
// peak resident memory of the capture process (its
// process_resident_memory_bytes metric, sampled every 50 ms).
//
// Usage:
//
//	cefiot-dataplane-bench [-frames 250] [-cameras 4] [-bin-dir bin]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/program"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func main() {
	program.Main("cefiot-dataplane-bench", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

type result struct {
	cameras    int
	frames     int
	elapsed    time.Duration
	p50, p99   time.Duration
	peakRSS    int64
	framesPerS float64
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cefiot-dataplane-bench", flag.ContinueOnError)
	frames := fs.Int("frames", 250, "frames of the video (all but the first have motion)")
	cameras := fs.Int("cameras", 4, "cameras of the second run")
	binDir := fs.String("bin-dir", "bin", "directory of the service binaries")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if *frames < 3 || *cameras < 1 {
		return errors.New("-frames must be at least 3 and -cameras at least 1")
	}
	wd, _ := os.Getwd()
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		return err
	}
	libs, err := kafkalocal.FindLibs(root)
	if err != nil {
		return fmt.Errorf("%w (run make kafka)", err)
	}
	bins, err := filepath.Abs(*binDir)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "cefiot-dataplane-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	spec := videogen.DefaultSpec()
	spec.Frames, spec.MotionStart, spec.MotionEnd = *frames, 1, *frames-1
	video := filepath.Join(tmp, "motion.avi")
	if err := videogen.Write(video, spec); err != nil {
		return err
	}
	var results []result
	for i, n := range []int{1, *cameras} {
		fast, err := measure(ctx, filepath.Join(tmp, fmt.Sprintf("fast%d", i)), bins, libs, video, n, spec.MotionFrames(), false, 0)
		if err != nil {
			return fmt.Errorf("%d camera(s), as fast as decoded: %w", n, err)
		}
		paced, err := measure(ctx, filepath.Join(tmp, fmt.Sprintf("paced%d", i)), bins, libs, video, n, spec.MotionFrames(), true, uint64(3*spec.FPS))
		if err != nil {
			return fmt.Errorf("%d camera(s), real time: %w", n, err)
		}
		fast.p50, fast.p99 = paced.p50, paced.p99
		fast.peakRSS = max(fast.peakRSS, paced.peakRSS)
		results = append(results, fast)
	}
	a, b := results[0], results[1]
	fmt.Fprintf(out, "data plane, local default (real Kafka, all services as processes), %dx%d MJPG video, %d motion frames per camera\n\n",
		spec.Width, spec.Height, spec.MotionFrames())
	fmt.Fprintf(out, "%-34s %14s %14s %10s\n", "", fmt.Sprintf("%d camera", a.cameras), fmt.Sprintf("%d cameras", b.cameras), "ratio")
	row := func(name string, x, y float64, unit string) {
		ratio := "-"
		if x > 0 {
			ratio = fmt.Sprintf("%.2fx", y/x)
		}
		fmt.Fprintf(out, "%-34s %14s %14s %10s\n", name, fmt.Sprintf("%.1f %s", x, unit), fmt.Sprintf("%.1f %s", y, unit), ratio)
	}
	row("frames stored", float64(a.frames), float64(b.frames), "")
	row("throughput (as fast as decoded)", a.framesPerS, b.framesPerS, "fr/s")
	row("latency p50 (25 fps per camera)", ms(a.p50), ms(b.p50), "ms")
	row("latency p99 (25 fps per camera)", ms(a.p99), ms(b.p99), "ms")
	row("capture peak RSS", float64(a.peakRSS)/(1<<20), float64(b.peakRSS)/(1<<20), "MiB")
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func measure(ctx context.Context, dir, bins, libs, video string, cameras, perCamera int, realtime bool, warmup uint64) (result, error) {
	var cams []string
	for i := 1; i <= cameras; i++ {
		cams = append(cams, fmt.Sprintf("cam-%d", i))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := localstack.Start(ctx, localstack.Config{
		BinDir: bins, RunDir: dir, KafkaLibs: libs, Video: video, Cameras: cams, Logger: logger, Realtime: realtime,
	})
	if err != nil {
		return result{}, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = stack.Stop(stopCtx)
	}()
	var peak atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go sampleRSS(sampleCtx, fmt.Sprintf("http://127.0.0.1:%d/metrics", stack.Config().Ports.CaptureHTTP), &peak)

	want := int64(cameras * perCamera)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := localstack.WaitSink(waitCtx, stack.SinkHTTP(), func(s localstack.SinkStatus) bool { return s.Stored >= want }, nil); err != nil {
		return result{}, err
	}
	stopSampling()
	conn, err := grpc.NewClient(stack.SinkGRPC(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)
	var lat []time.Duration
	var first, last time.Time
	n := 0
	token := ""
	for {
		resp, err := sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return result{}, err
		}
		for _, f := range resp.GetFrames() {
			c, s := f.GetCaptureTime().AsTime(), f.GetStoredTime().AsTime()
			n++
			if f.GetSequence() >= warmup {
				lat = append(lat, s.Sub(c))
			}
			if first.IsZero() || c.Before(first) {
				first = c
			}
			if s.After(last) {
				last = s
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	elapsed := last.Sub(first)
	return result{
		cameras: cameras, frames: n, elapsed: elapsed, p50: pct(0.50), p99: pct(0.99),
		peakRSS: peak.Load(), framesPerS: float64(n) / elapsed.Seconds(),
	}, nil
}

// sampleRSS keeps the largest process_resident_memory_bytes seen.
func sampleRSS(ctx context.Context, url string, peak *atomic.Int64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if v, ok := readRSS(ctx, url); ok && v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func readRSS(ctx context.Context, url string) (int64, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err == nil
		}
	}
	return 0, false
}
