// Command cefiot-dataplane-bench measures the data plane end to end on the
// local default (real Kafka clusters, real service processes). A generated
// 768x576 video in which every frame after the first has motion is fed to
// 1 camera and then to N cameras (default 4) of one capture process. It
// prints side by side: throughput (stored frames per second, the video read
// as fast as it decodes, first capture time to last stored time); latency
// (p50/p99 of stored_time - capture_time, the video paced at its 25 fps,
// of the frames captured 5 s or more after the first was stored, and how
// long that first frame took, start-up included); and the
// peak resident memory of the capture process (its
// process_resident_memory_bytes metric, sampled every 50 ms); and where the
// CPU goes: milliseconds of CPU per stored frame for every service process
// and every Kafka broker (from /proc), with capture's share split into
// decode, detect, encode and publish by a CPU profile taken from its admin
// port (/debug/pprof/profile) during the run.
//
// Usage:
//
//	cefiot-dataplane-bench [-frames 750] [-cameras 4] [-bin-dir bin] [-latency-log latencies.csv]
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/pprof/profile"
	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/cmd/internal/cpu"
	"github.com/cefiot/cefiot/cmd/internal/localenv"
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
	// cpuPerFrame is the CPU each process (and each stage of capture)
	// spent per stored frame in the run as fast as decoded.
	cpuPerFrame map[string]time.Duration
	cameras     int
	frames      int
	elapsed     time.Duration
	p50, p99    time.Duration
	peakRSS     int64
	framesPerS  float64
	// steadyPerS is the store rate once running: the frames stored from
	// steadyAfter after the first one on, over the time they took.
	steadyPerS float64
	// samples are the frames of the latency (captured steadyAfter or
	// more after the first frame was stored); firstStored is how long
	// the first frame took, start-up included.
	samples     []latencySample
	firstStored time.Duration
}

// latencySample is one stored frame's way through the pipeline.
type latencySample struct {
	camera   string
	sequence uint64
	captured time.Time
	latency  time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cefiot-dataplane-bench", flag.ContinueOnError)
	frames := fs.Int("frames", 750, "frames of the video (all but the first have motion); the latency is of the frames captured 5 s or more after the first was stored")
	cameras := fs.Int("cameras", 4, "cameras of the second run")
	binDir := fs.String("bin-dir", "bin", "directory of the service binaries")
	compare := fs.Bool("compare", true, "also run 1 camera with the thumbnails made by enrich, as before, and print it beside today's")
	tlsCompare := fs.Bool("tls-compare", true, "also run 1 camera with security off (no TLS, no ACLs) and print what security costs")
	latencyLog := fs.String("latency-log", "", "write every frame's latency of the real-time runs to this CSV file (cameras, camera, sequence, capture time, latency in ms), to see when the slow ones came")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if *frames < 3 || *cameras < 1 {
		return errors.New("-frames must be at least 3 and -cameras at least 1")
	}
	env, err := localenv.Find(*binDir)
	if err != nil {
		return err
	}
	bins, libs := env.BinDir, env.KafkaLibs
	tmp, remove, err := localenv.ScratchDir("cefiot-dataplane-bench")
	if err != nil {
		return err
	}
	defer remove()
	spec := videogen.DefaultSpec()
	spec.Frames, spec.MotionStart, spec.MotionEnd = *frames, 1, *frames-1
	video := filepath.Join(tmp, "motion.avi")
	if err := videogen.Write(video, spec); err != nil {
		return err
	}
	var results []result
	var latencies []result
	for i, n := range []int{1, *cameras} {
		fast, err := measure(ctx, filepath.Join(tmp, fmt.Sprintf("fast%d", i)), bins, libs, video, n, spec.MotionFrames(), false, 0, nil, false)
		if err != nil {
			return fmt.Errorf("%d camera(s), as fast as decoded: %w", n, err)
		}
		paced, err := measure(ctx, filepath.Join(tmp, fmt.Sprintf("paced%d", i)), bins, libs, video, n, spec.MotionFrames(), true, steadyAfter, nil, false)
		if err != nil {
			return fmt.Errorf("%d camera(s), real time: %w", n, err)
		}
		latencies = append(latencies, paced)
		fast.p50, fast.p99, fast.firstStored = paced.p50, paced.p99, paced.firstStored // cpuPerFrame stays the fast run's
		fast.peakRSS = max(fast.peakRSS, paced.peakRSS)
		results = append(results, fast)
	}
	if *latencyLog != "" {
		if err := writeLatencies(*latencyLog, latencies); err != nil {
			return err
		}
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
	row("  steady (from 5 s after 1st stored)", a.steadyPerS, b.steadyPerS, "fr/s")
	row("first frame stored (25 fps, start-up)", ms(a.firstStored), ms(b.firstStored), "ms")
	row("latency p50 (25 fps, steady)", ms(a.p50), ms(b.p50), "ms")
	row("latency p99 (25 fps, steady)", ms(a.p99), ms(b.p99), "ms")
	row("capture peak RSS", float64(a.peakRSS)/(1<<20), float64(b.peakRSS)/(1<<20), "MiB")
	fmt.Fprintf(out, "\nCPU per stored frame (as fast as decoded; processes from /proc, capture's stages from a CPU profile)\n\n")
	for _, name := range cpuRows(a.cpuPerFrame, b.cpuPerFrame) {
		row(name, ms(a.cpuPerFrame[name]), ms(b.cpuPerFrame[name]), "ms")
	}
	fmt.Fprintln(out)
	for _, r := range results {
		fmt.Fprintf(out, "%d camera(s): %s\n", r.cameras, limit(r, runtime.NumCPU()))
	}
	if *tlsCompare {
		if err := securityCost(ctx, out, tmp, bins, libs, video, spec, a, row); err != nil {
			return err
		}
	}
	if !*compare {
		return nil
	}
	// Before and after, side by side: the thumbnail made by enrich from the
	// full JPEG (capture -thumbnail-width 0, as before) against capture's,
	// made from the image it has decoded anyway.
	before, err := measure(ctx, filepath.Join(tmp, "before"), bins, libs, video, 1, spec.MotionFrames(), false, 0,
		map[string][]string{"capture": {"-thumbnail-width", "0"}}, false)
	if err != nil {
		return fmt.Errorf("1 camera, thumbnails by enrich: %w", err)
	}
	fmt.Fprintf(out, "\nThumbnails: made by enrich from the full JPEG (before) against made by capture from the decoded image (now), 1 camera as fast as decoded\n\n")
	fmt.Fprintf(out, "%-34s %14s %14s %10s\n", "", "before", "now", "ratio")
	row("throughput", before.framesPerS, a.framesPerS, "fr/s")
	for _, name := range []string{"capture", "enrich", "total (all processes)"} {
		row("CPU per frame: "+name, ms(before.cpuPerFrame[name]), ms(a.cpuPerFrame[name]), "ms")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// steadyAfter is how long after the first frame is stored the latency
// samples start: the JVMs' JIT, the first transactions and the consumer
// groups' joins make a start-up backlog that takes a few seconds to drain
// (measured: about 5 s on the 2-core machine), and the p50 / p99 are of
// the pipeline running, not starting. The start-up is reported on its own.
const steadyAfter = 5 * time.Second

func measure(ctx context.Context, dir, bins, libs, video string, cameras, perCamera int, realtime bool, settle time.Duration, binaryArgs map[string][]string, plaintext bool) (result, error) {
	var cams []string
	for i := 1; i <= cameras; i++ {
		cams = append(cams, fmt.Sprintf("cam-%d", i))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := localstack.Start(ctx, localstack.Config{
		BinDir: bins, RunDir: dir, KafkaLibs: libs, Video: video, Cameras: cams, Logger: logger, Realtime: realtime,
		BinaryArgs: binaryArgs, InsecurePlaintext: plaintext,
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
	go sampleRSS(sampleCtx, stack.OperatorHTTP(), stack.HTTP("capture")+"/metrics", &peak)

	meter, err := cpu.Start(processes(stack))
	if err != nil {
		return result{}, err
	}
	profiled := make(chan profileResult, 1)
	if !realtime {
		go func() {
			// Capture's admin port opens a moment after the process starts.
			for {
				p, err := cpu.Fetch(ctx, stack.OperatorHTTP(), stack.HTTP("capture"), profileSeconds)
				if err == nil || ctx.Err() != nil || !errors.Is(err, syscall.ECONNREFUSED) {
					profiled <- profileResult{p, err}
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}

	want := int64(cameras * perCamera)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := stack.WaitSink(waitCtx, func(s localstack.SinkStatus) bool { return s.Stored >= want }, nil); err != nil {
		return result{}, err
	}
	stopSampling()
	used, err := meter.Used()
	if err != nil {
		return result{}, err
	}
	perFrame := map[string]time.Duration{}
	var total time.Duration
	for name, d := range used {
		perFrame[name] = d / time.Duration(want)
		total += d
	}
	perFrame["total (all processes)"] = total / time.Duration(want)
	if !realtime {
		pr := <-profiled
		if pr.err != nil {
			return result{}, pr.err
		}
		split := cpu.Split(pr.p, captureStages)
		var sampled time.Duration
		for _, d := range split {
			sampled += d
		}
		if sampled > 0 {
			for stage, d := range split {
				perFrame["  capture: "+stage] = time.Duration(float64(perFrame["capture"]) * float64(d) / float64(sampled))
			}
		}
	}
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.OperatorDial())
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)
	var all []latencySample
	var first, last, firstStored time.Time
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
			all = append(all, latencySample{camera: f.GetCameraId(), sequence: f.GetSequence(), captured: c, latency: s.Sub(c)})
			if firstStored.IsZero() || s.Before(firstStored) {
				firstStored = s
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
	var lat []time.Duration
	var samples []latencySample
	for _, sm := range all {
		if !sm.captured.Before(firstStored.Add(settle)) {
			lat = append(lat, sm.latency)
			samples = append(samples, sm)
		}
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no frame captured %v after the first was stored: use a longer video (-frames)", settle)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	elapsed := last.Sub(first)
	steadyFrom := firstStored.Add(steadyAfter)
	steadyN := 0
	for _, sm := range all {
		if !sm.captured.Add(sm.latency).Before(steadyFrom) {
			steadyN++
		}
	}
	var steadyPerS float64
	if d := last.Sub(steadyFrom); d > 0 {
		steadyPerS = float64(steadyN) / d.Seconds()
	}
	return result{
		steadyPerS:  steadyPerS,
		cpuPerFrame: perFrame,
		cameras:     cameras, frames: n, elapsed: elapsed, p50: pct(0.50), p99: pct(0.99),
		peakRSS: peak.Load(), framesPerS: float64(n) / elapsed.Seconds(), samples: samples, firstStored: firstStored.Sub(first),
	}, nil
}

// profileSeconds is how long capture's CPU profile runs: the start of the
// run, where capture decodes, detects and encodes at full speed.
const profileSeconds = 3

type profileResult struct {
	p   *profile.Profile
	err error
}

// captureStages splits capture's CPU profile.
var captureStages = []cpu.Stage{
	{Name: "decode", Functions: []string{"source.(*VideoFile).Next", "gocv.(*VideoCapture).Read"}},
	{Name: "detect", Functions: []string{"motion.(*Detector).Detect"}},
	{Name: "encode", Functions: []string{"motion.EncodeJPEG"}},
	{Name: "publish", Functions: []string{"confluent-kafka-go", "capture.(*publisher)"}},
}

// processes are the processes whose CPU the benchmark counts: every
// service and every Kafka broker of both clusters.
func processes(stack *localstack.Stack) map[string]int {
	out := map[string]int{}
	for _, name := range stack.ServiceNames() {
		if pid := stack.PID(name); pid != 0 {
			out[name] = pid
		}
	}
	for _, c := range []*kafkalocal.Cluster{stack.Edge, stack.Cloud} {
		for _, n := range c.Nodes() {
			if n.PID != 0 {
				out[fmt.Sprintf("kafka %s broker %d", c.Name(), n.ID)] = n.PID
			}
		}
	}
	return out
}

// cpuRows orders the CPU table: pipeline stages, capture's parts, the rest.
// limit says what held a run back: the CPU, when the processes kept the
// machine's cores busy (naming the process with the largest share), or
// else the pipeline's own pace (batch waits, transactions, one camera's
// decoding), which more cores would not change.
func limit(r result, cores int) string {
	total := r.cpuPerFrame["total (all processes)"]
	busy := total.Seconds() * r.framesPerS
	if busy < 0.85*float64(cores) {
		return fmt.Sprintf("not CPU-bound (%.2f of %d cores busy): the limit is the pipeline's pace (a camera decodes one frame at a time; batch waits and transactions per hop)", busy, cores)
	}
	top, topShare := "", time.Duration(0)
	for name, d := range r.cpuPerFrame {
		if strings.HasPrefix(name, "  ") || strings.HasPrefix(name, "total") {
			continue // capture's stages are inside capture
		}
		if d > topShare {
			top, topShare = name, d
		}
	}
	return fmt.Sprintf("CPU-bound (%.2f of %d cores busy): the largest share is %s, %.0f%% of the CPU per frame", busy, cores, strings.TrimSpace(top), 100*topShare.Seconds()/total.Seconds())
}

func cpuRows(a, b map[string]time.Duration) []string {
	seen := map[string]bool{}
	var names []string
	for _, m := range []map[string]time.Duration{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	rank := func(n string) int {
		for i, p := range []string{"capture", "  capture: decode", "  capture: detect", "  capture: encode", "  capture: publish", "  capture: other", "enrich", "bridge", "sink", "kafka edge", "kafka cloud", "scheduler", "total"} {
			if strings.HasPrefix(n, p) {
				return i
			}
		}
		return 99
	}
	slices.SortFunc(names, func(x, y string) int {
		if d := rank(x) - rank(y); d != 0 {
			return d
		}
		return strings.Compare(x, y)
	})
	return names
}

// sampleRSS keeps the largest process_resident_memory_bytes seen.
func sampleRSS(ctx context.Context, client *http.Client, url string, peak *atomic.Int64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if v, ok := readRSS(ctx, client, url); ok && v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func readRSS(ctx context.Context, client *http.Client, url string) (int64, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
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

// securityCost runs 1 camera with security off (as fast as decoded, then
// paced) and prints it beside secure, the configuration users run.
func securityCost(ctx context.Context, out io.Writer, tmp, bins, libs, video string, spec videogen.Spec, secure result, row func(string, float64, float64, string)) error {
	plain, err := measure(ctx, filepath.Join(tmp, "plain-fast"), bins, libs, video, 1, spec.MotionFrames(), false, 0, nil, true)
	if err != nil {
		return fmt.Errorf("1 camera without security: %w", err)
	}
	paced, err := measure(ctx, filepath.Join(tmp, "plain-paced"), bins, libs, video, 1, spec.MotionFrames(), true, steadyAfter, nil, true)
	if err != nil {
		return fmt.Errorf("1 camera without security, real time: %w", err)
	}
	plain.p50, plain.p99 = paced.p50, paced.p99
	fmt.Fprintf(out, "\nWhat security costs: every hop plaintext and unauthorized (-insecure-plaintext) against mutual TLS with ACLs (as run), 1 camera\n\n")
	fmt.Fprintf(out, "%-34s %14s %14s %10s\n", "", "plaintext", "secure", "ratio")
	row("throughput (as fast as decoded)", plain.framesPerS, secure.framesPerS, "fr/s")
	row("latency p50 (25 fps)", ms(plain.p50), ms(secure.p50), "ms")
	row("latency p99 (25 fps)", ms(plain.p99), ms(secure.p99), "ms")
	for _, name := range cpuRows(plain.cpuPerFrame, secure.cpuPerFrame) {
		if !strings.HasPrefix(name, "  ") {
			row("CPU per frame: "+name, ms(plain.cpuPerFrame[name]), ms(secure.cpuPerFrame[name]), "ms")
		}
	}
	return nil
}

// writeLatencies writes the frames of runs as CSV, in capture order.
func writeLatencies(path string, runs []result) error {
	var b strings.Builder
	b.WriteString("cameras,camera,sequence,capture_time,latency_ms\n")
	for _, r := range runs {
		samples := slices.Clone(r.samples)
		slices.SortFunc(samples, func(x, y latencySample) int { return x.captured.Compare(y.captured) })
		for _, sm := range samples {
			fmt.Fprintf(&b, "%d,%s,%d,%s,%.1f\n", r.cameras, sm.camera, sm.sequence, sm.captured.Format(time.RFC3339Nano), ms(sm.latency))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("-latency-log: %w", err)
	}
	return nil
}
