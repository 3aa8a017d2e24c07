package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cefiot/cefiot/libs/harness/pglocal"
	"github.com/cefiot/cefiot/libs/harness/pglocal/pgtest"
)

// envIndexBenchFrames lists the index sizes BenchmarkPostgresIndex
// measures, in frames, comma-separated and increasing (each is loaded on
// top of the one before).
const envIndexBenchFrames = "CEFIOT_INDEX_BENCH_FRAMES"

const (
	defaultIndexBenchFrames = "1000000"
	// pgBenchQueries is how many times each search is timed.
	pgBenchQueries = 2000
	// pgBenchStatsAll is how many times Stats of every camera is timed
	// (two index probes per camera each).
	pgBenchStatsAll = 200
	// pgBenchInserts is how many frames each insert measurement indexes.
	pgBenchInserts = 20_000
	// pgBenchTarget is the p99 a camera and time search must stay under.
	pgBenchTarget = 50 * time.Millisecond
)

// pgBenchSettings tune the server for an index of millions of frames; the
// rest are pglocal's (fsync and synchronous commit on).
var pgBenchSettings = map[string]string{
	"shared_buffers":       "'1GB'",
	"effective_cache_size": "'4GB'",
	"max_wal_size":         "'2GB'",
}

// pgBenchReport is what BenchmarkPostgresIndex measured at one size.
type pgBenchReport struct {
	frames      int64
	load        time.Duration
	framesBytes int64 // frames table, TOAST and indexes
	framesIdx   int64 // of which indexes
	eventsBytes int64
	allBytes    int64 // every table of the index (Stats.IndexBytes)
	searches    []pgBenchLatency
	// loadBefore and loadAfter are the machine's load average (1 min)
	// around the searches: what else ran shows in their tails.
	loadBefore, loadAfter string
	inserts               []pgBenchRate
}

type pgBenchLatency struct {
	name          string
	n             int
	p50, p99, max time.Duration
	target        bool // checked against pgBenchTarget
}

type pgBenchRate struct {
	writers int
	frames  int
	took    time.Duration
}

// pgBenchDone keeps the reports of this process's run: the benchmark
// function runs more than once (once with b.N = 1, then with -benchtime),
// the measurement once.
var pgBenchDone struct {
	sync.Mutex
	sizes   string
	reports []pgBenchReport
}

// BenchmarkPostgresIndex measures the PostgreSQL index at a realistic size
// (1,000,000 frames by default; set CEFIOT_INDEX_BENCH_FRAMES, e.g. to
// 1000000,10000000, for more sizes): 100 cameras storing a frame a second
// in events of 25, bulk-loaded with SQL, then every search timed through
// the index's own methods, one client, and the real Insert path's rate
// with 1 and 4 writers (one frame per transaction, fsync on). It prints a
// table per size, with the camera and time search's p99 against its 50 ms
// target, whatever b.N is.
//
//	go test -run '^$' -bench PostgresIndex -benchtime 1x ./internal/store
func BenchmarkPostgresIndex(b *testing.B) {
	if testing.Short() {
		b.Skip("real PostgreSQL; skipped with -short")
	}
	spec := os.Getenv(envIndexBenchFrames)
	if spec == "" {
		spec = defaultIndexBenchFrames
	}
	sizes, err := parseBenchSizes(spec)
	if err != nil {
		b.Fatalf("%s: %v", envIndexBenchFrames, err)
	}
	pgBenchDone.Lock()
	defer pgBenchDone.Unlock()
	if pgBenchDone.sizes != spec {
		pgBenchDone.reports = runPgBench(b, sizes, os.Stdout)
		pgBenchDone.sizes = spec
	}
	for _, r := range pgBenchDone.reports {
		for _, s := range r.searches {
			if s.target {
				b.ReportMetric(ms(s.p99), "p99-ms/camera+time@"+shortCount(r.frames))
			}
		}
	}
	b.ReportMetric(0, "ns/op")
}

// parseBenchSizes reads increasing frame counts, each whole events of
// every camera.
func parseBenchSizes(spec string) ([]int64, error) {
	var sizes []int64
	for part := range strings.SplitSeq(spec, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%q: %w", part, err)
		case n <= 0 || n%loadUnit != 0:
			return nil, fmt.Errorf("%d: want a positive multiple of %d (whole events of %d cameras)", n, loadUnit, loadCameras)
		case len(sizes) > 0 && n <= sizes[len(sizes)-1]:
			return nil, fmt.Errorf("%d: sizes must increase", n)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// runPgBench starts a server, grows the index to each size in turn and
// measures it there, printing each size's table to out.
func runPgBench(b *testing.B, sizes []int64, out io.Writer) []pgBenchReport {
	srv := pgtest.StartConfig(b, pglocal.Config{Settings: pgBenchSettings, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	idx, err := OpenPostgres(ctx, PostgresConfig{DSN: srv.DSN(), Schema: "bench", MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = idx.Close() }()
	conn, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		b.Fatalf("connect for loading: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var version string
	for _, stmt := range []string{`SET search_path = bench`, `SET work_mem = '64MB'`} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := conn.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		b.Fatalf("server version: %v", err)
	}
	var settings []string
	for _, k := range slices.Sorted(maps.Keys(pgBenchSettings)) {
		settings = append(settings, k+" = "+pgBenchSettings[k])
	}
	fmt.Fprintf(out, "\nPostgreSQL index (PostgreSQL %s, %s; fsync and synchronous_commit on), %d cameras, a frame a second each, events of %d frames\n",
		version, strings.Join(settings, ", "), loadCameras, loadEventFrames)
	var reports []pgBenchReport
	var loaded, inserted int64
	for run, size := range sizes {
		begin := time.Now()
		if err := loadFrames(ctx, conn, loaded, size); err != nil {
			b.Fatal(err)
		}
		r := pgBenchReport{frames: size, load: time.Since(begin)}
		loaded = size
		if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size('frames'), pg_indexes_size('frames'), pg_total_relation_size('events')`).
			Scan(&r.framesBytes, &r.framesIdx, &r.eventsBytes); err != nil {
			b.Fatalf("table sizes: %v", err)
		}
		st, err := idx.Stats(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		if want := uint64(size + inserted); st.Frames != want {
			b.Fatalf("Stats counts %d frames, want %d (%d loaded, %d inserted)", st.Frames, want, size, inserted)
		}
		r.allBytes = st.IndexBytes
		r.loadBefore = loadAverage()
		if r.searches, err = timeSearches(ctx, idx, size); err != nil {
			b.Fatal(err)
		}
		r.loadAfter = loadAverage()
		for i, writers := range []int{1, 4} {
			took, err := timeInserts(ctx, idx, 2*run+i+1, writers, pgBenchInserts)
			if err != nil {
				b.Fatal(err)
			}
			r.inserts = append(r.inserts, pgBenchRate{writers: writers, frames: pgBenchInserts, took: took})
			inserted += pgBenchInserts
		}
		printPgBench(out, r)
		reports = append(reports, r)
	}
	return reports
}

// pgBenchSearch is one kind of search, made of a random draw.
type pgBenchSearch struct {
	name   string
	n      int
	target bool
	// prepare draws the search and returns it to run (the timed part).
	prepare func(ctx context.Context, r *rand.Rand) (func() error, error)
}

// timeSearches times every kind of search over an index of frames
// frames of the layout loadFrames writes, through the Index's methods.
func timeSearches(ctx context.Context, idx Index, frames int64) ([]pgBenchLatency, error) {
	span := frames / loadCameras // seconds of frames per camera
	const hour = int64(time.Hour / time.Second)
	if span < hour {
		return nil, fmt.Errorf("time searches: %d frames span %d s per camera, less than the 1 h window", frames, span)
	}
	camera := func(r *rand.Rand) string { return "cam-" + strconv.Itoa(r.IntN(loadCameras)) }
	window := func(r *rand.Rand) (time.Time, time.Time) {
		start := base.Add(time.Duration(r.Int64N(span-hour+1)) * time.Second)
		return start, start.Add(time.Hour)
	}
	frameQuery := func(want int, q func(r *rand.Rand) Query) func(context.Context, *rand.Rand) (func() error, error) {
		return func(ctx context.Context, r *rand.Rand) (func() error, error) {
			query := q(r)
			return func() error {
				page, _, err := idx.ListFrames(ctx, query)
				if err == nil && len(page) != want {
					err = fmt.Errorf("%+v: %d frames, want %d", query, len(page), want)
				}
				return err
			}, nil
		}
	}
	searches := []pgBenchSearch{
		{name: "camera + 1 h window, first page of 100", n: pgBenchQueries, target: true,
			prepare: frameQuery(100, func(r *rand.Rand) Query {
				start, end := window(r)
				return Query{CameraID: camera(r), Start: start, End: end, Limit: 100}
			})},
		{name: "camera + 1 h window + score >= 0.9 (a tenth)", n: pgBenchQueries,
			prepare: frameQuery(100, func(r *rand.Rand) Query {
				start, end := window(r)
				return Query{CameraID: camera(r), Start: start, End: end, MinScore: 0.9, Limit: 100}
			})},
		{name: "camera + 1 h window, page 2 (token)", n: pgBenchQueries,
			prepare: func(ctx context.Context, r *rand.Rand) (func() error, error) {
				start, end := window(r)
				q := Query{CameraID: camera(r), Start: start, End: end, Limit: 100}
				_, token, err := idx.ListFrames(ctx, q)
				if err != nil || token == "" {
					return nil, fmt.Errorf("first page of %+v: token %q, %v", q, token, err)
				}
				q.PageToken = token
				return frameQuery(100, func(*rand.Rand) Query { return q })(ctx, r)
			}},
		{name: "1 h window, every camera, first page of 100", n: pgBenchQueries,
			prepare: frameQuery(100, func(r *rand.Rand) Query {
				start, end := window(r)
				return Query{Start: start, End: end, Limit: 100}
			})},
		{name: "frames of an event (25)", n: pgBenchQueries,
			prepare: frameQuery(loadEventFrames, func(r *rand.Rand) Query {
				ev := fmt.Sprintf("%s-ev-%d", camera(r), r.Int64N(span/loadEventFrames))
				return Query{EventID: ev, Limit: 100}
			})},
		{name: "events of a camera before a time, newest first, 100", n: pgBenchQueries,
			prepare: func(ctx context.Context, r *rand.Rand) (func() error, error) {
				_, end := window(r)
				q := EventQuery{CameraID: camera(r), End: end, NewestFirst: true, Limit: 100}
				return func() error {
					page, _, err := idx.ListEvents(ctx, q)
					if err == nil && len(page) != 100 {
						err = fmt.Errorf("%+v: %d events, want 100", q, len(page))
					}
					return err
				}, nil
			}},
		{name: "Stats of a camera", n: pgBenchQueries,
			prepare: func(ctx context.Context, r *rand.Rand) (func() error, error) {
				cam := camera(r)
				return func() error {
					st, err := idx.Stats(ctx, cam)
					if err == nil && len(st.Cameras) != 1 {
						err = fmt.Errorf("Stats(%s): %d cameras", cam, len(st.Cameras))
					}
					return err
				}, nil
			}},
		{name: fmt.Sprintf("Stats of every camera (%d)", loadCameras), n: pgBenchStatsAll,
			prepare: func(ctx context.Context, r *rand.Rand) (func() error, error) {
				return func() error {
					_, err := idx.Stats(ctx, "")
					return err
				}, nil
			}},
	}
	var out []pgBenchLatency
	for i, s := range searches {
		r := rand.New(rand.NewPCG(uint64(frames), uint64(i)))
		took := make([]time.Duration, 0, s.n)
		for range s.n {
			run, err := s.prepare(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			begin := time.Now()
			err = run()
			took = append(took, time.Since(begin))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		slices.Sort(took)
		out = append(out, pgBenchLatency{name: s.name, n: s.n, target: s.target,
			p50: took[(len(took)-1)/2], p99: took[(len(took)*99+99)/100-1], max: took[len(took)-1]})
	}
	return out, nil
}

// timeInserts indexes frames new frames through Insert from writers
// goroutines, each its own 25 cameras (as replicas split cameras by
// partition), and returns how long it took. run keeps the ids of each
// measurement apart.
func timeInserts(ctx context.Context, idx Index, run, writers, frames int) (time.Duration, error) {
	each := frames / writers
	epoch := uint64(loadEpoch + run)
	start := base.Add(time.Duration(run) * 1_000_000 * time.Second)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	begin := time.Now()
	for w := range writers {
		wg.Go(func() {
			for j := range each {
				cam := fmt.Sprintf("live-%d-%d", w, j%loadEventFrames)
				seq := uint64(j / loadEventFrames)
				m := newFrame(cam, seq, start.Add(time.Duration(seq)*time.Second))
				m.SessionEpoch, m.FrameID = epoch, frameID(cam, epoch, seq)
				m.SizeBytes, m.ContentSHA256, m.ThumbnailBytes = 100_000, strings.Repeat("7f", 32), 9000
				m.EventID = fmt.Sprintf("%s_%d-ev-%d", cam, epoch, seq/loadEventFrames)
				m.EventFrameIndex = uint32(seq % loadEventFrames)
				m.EventPhase = PhaseUpdate
				if m.EventFrameIndex == 0 {
					m.EventPhase = PhaseStart
				}
				stored, err := idx.Insert(ctx, Entry{Meta: m, Path: relPath(m), ThumbPath: thumbPath(m)})
				if err == nil && !stored {
					err = fmt.Errorf("frame %s was not stored", m.FrameID)
				}
				if err != nil {
					errs[w] = fmt.Errorf("writer %d of %d: insert: %w", w, writers, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(begin)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

// printPgBench writes one size's report as Markdown tables.
func printPgBench(out io.Writer, r pgBenchReport) {
	fmt.Fprintf(out, "\n%s frames: loaded with SQL in %v (VACUUM ANALYZE included); frames table %s (indexes %s), events %s, every table %s (%d bytes a frame)\n\n",
		withCommas(r.frames), r.load.Round(time.Second), mib(r.framesBytes), mib(r.framesIdx), mib(r.eventsBytes), mib(r.allBytes), r.allBytes/r.frames)
	fmt.Fprintf(out, "| search at %s frames (one client; load average %s -> %s) | queries | p50 ms | p99 ms | max ms | target |\n|---|---|---|---|---|---|\n",
		shortCount(r.frames), r.loadBefore, r.loadAfter)
	for _, s := range r.searches {
		verdict := ""
		if s.target {
			verdict = "PASS"
			if s.p99 > pgBenchTarget {
				verdict = "FAIL"
			}
			verdict = fmt.Sprintf("%s (p99 <= %d ms)", verdict, pgBenchTarget.Milliseconds())
		}
		fmt.Fprintf(out, "| %s | %d | %.2f | %.2f | %.2f | %s |\n", s.name, s.n, ms(s.p50), ms(s.p99), ms(s.max), verdict)
	}
	fmt.Fprintf(out, "\n| Insert at %s frames (a frame a transaction) | frames | frames/s |\n|---|---|---|\n", shortCount(r.frames))
	for _, in := range r.inserts {
		fmt.Fprintf(out, "| %d writer(s), own cameras each | %d | %.0f |\n", in.writers, in.frames, float64(in.frames)/in.took.Seconds())
	}
}

// loadAverage is the machine's 1-minute load average ("?" where there is
// no /proc/loadavg).
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	first, _, _ := strings.Cut(string(raw), " ")
	return first
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// shortCount is 1M for 1,000,000 (and 250k, 2.5M).
func shortCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(n, 10)
}

func withCommas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
