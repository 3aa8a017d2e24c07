package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cefiot/cefiot/libs/harness/pglocal/pgtest"
)

// withPostgres keeps each store dir's index in its own schema of one real
// PostgreSQL server; the objects stay b's.
func withPostgres(b backend, dsn string) backend {
	b.name, b.shared = b.name+"+postgres", true
	b.index = func(ctx context.Context, t testing.TB, dir string) (Index, error) {
		return OpenPostgres(ctx, PostgresConfig{DSN: dsn, Schema: schemaOf(dir)})
	}
	return b
}

func schemaOf(dir string) string {
	h := fnv.New64a()
	h.Write([]byte(dir))
	return fmt.Sprintf("t%x", h.Sum64())
}

// TestStorePostgres runs the store contract with its index on a real
// PostgreSQL server (TLS, password), the index sink replicas share.
func TestStorePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL; skipped with -short")
	}
	srv := pgtest.Start(t)
	runContract(t, withPostgres(fsBackend(), srv.DSN()))
}

// TestStorePostgresS3 runs it as the cloud deploys it: the index on
// PostgreSQL, the objects in an S3 bucket (versitygw).
func TestStorePostgresS3(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL and S3; skipped with -short")
	}
	srv := pgtest.Start(t)
	runContract(t, withPostgres(s3Backend(t), srv.DSN()))
}

// TestPostgresSearchesUseIndexes reads the query plan of every search the
// index answers, on tables of a realistic size, as the planner makes it:
// each reads the index meant for it, none the whole table.
func TestPostgresSearchesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL; skipped with -short")
	}
	srv := pgtest.Start(t)
	ctx := context.Background()
	dsn := srv.DSN()
	idx, err := OpenPostgres(ctx, PostgresConfig{DSN: dsn, Schema: "plans"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idx.Close() }()
	// A few real entries (for a page token), then a table of the size the
	// planner meets in production: 200,000 frames of 100 cameras in 8,000
	// events.
	for i := range 20 {
		m := newFrame("cam-1", uint64(i), base.Add(time.Duration(i)*time.Second))
		m.SizeBytes, m.ContentSHA256 = 100, strings.Repeat("0", 64)
		if _, err := idx.Insert(ctx, Entry{Meta: m, Path: relPath(m)}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, stmt := range []string{
		`SET search_path = plans`,
		`INSERT INTO frames (frame_id, site, camera_id, capture_ns, motion_score, event_id, size_bytes, path, meta)
SELECT 'f' || i, 'site-a', 'cam-' || (i % 100 + 2), ` + fmt.Sprint(base.UnixNano()) + ` + i * 1000000000::bigint, (i % 10) / 10.0,
    'e' || (i / 25), 100, 'p', '{}' FROM generate_series(1, 200000) AS i`,
		// One event in 50 saw a person, one in 200 a car as well.
		`INSERT INTO events (event_id, site, camera_id, start_ns, end_ns, ended, frames, size_bytes, peak_score, best_frame_id, boxes, labels)
SELECT 'e' || i, 'site-a', 'cam-' || (i % 100 + 2), ` + fmt.Sprint(base.UnixNano()) + ` + i * 25000000000::bigint, 0, true, 25, 2500, (i % 10) / 10.0, 'f1', '[]',
    CASE WHEN i % 200 = 0 THEN '{car,person}'::text[] WHEN i % 50 = 0 THEN '{person}'::text[] ELSE '{}'::text[] END
FROM generate_series(1, 8000) AS i`,
		`ANALYZE frames`,
		`ANALYZE events`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// A token after the first page, to plan the cursor condition too.
	_, token, err := idx.ListFrames(ctx, Query{CameraID: "cam-1", Limit: 10})
	if err != nil || token == "" {
		t.Fatalf("first page: token %q, %v", token, err)
	}
	start, end := base.Add(time.Minute), base.Add(time.Hour)
	cases := []struct {
		name  string
		page  pgPage
		cols  string
		index string
	}{
		{"camera and time", framesPage(Query{CameraID: "cam-7", Start: start, End: end, Limit: 100}), "frame_id, capture_ns, meta", "frames_by_camera_time"},
		{"camera, time and score", framesPage(Query{CameraID: "cam-7", Start: start, End: end, MinScore: 0.5, Limit: 100}), "frame_id, capture_ns, meta", "frames_by_camera_time"},
		{"camera, next page", framesPage(Query{CameraID: "cam-1", Limit: 10, PageToken: token}), "frame_id, capture_ns, meta", "frames_by_camera_time"},
		{"time, every camera", framesPage(Query{Start: start, End: end, Limit: 100}), "frame_id, capture_ns, meta", "frames_by_time"},
		{"event", framesPage(Query{EventID: "e3", Limit: 100}), "frame_id, capture_ns, meta", "frames_by_event"},
		{"events of a camera", eventsPage(EventQuery{CameraID: "cam-7", Start: start, Limit: 100}), pgEventColumns, "events_by_camera_start"},
		{"events of a camera, newest first", eventsPage(EventQuery{CameraID: "cam-7", NewestFirst: true, Limit: 100}), pgEventColumns, "events_by_camera_start"},
		{"events, newest first", eventsPage(EventQuery{NewestFirst: true, Limit: 100}), pgEventColumns, "events_by_start"},
		{"events by score", eventsPage(EventQuery{MinScore: 0.3, Limit: 100}), pgEventColumns, "events_by_start"},
		{"events by label", eventsPage(EventQuery{Label: "car", Limit: 100}), pgEventColumns, "events_by_label"},
		{"events of a camera by label", eventsPage(EventQuery{CameraID: "cam-7", Label: "person", Limit: 100}), pgEventColumns, "events_by_"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			sql, args, empty, err := c.page.build(c.cols)
			if err != nil || empty {
				t.Fatalf("build: %v (empty %v)", err, empty)
			}
			plan := explain(ctx, t, conn, sql, args)
			if !strings.Contains(plan, "Index") || !strings.Contains(plan, c.index) {
				t.Errorf("plan does not scan %s:\n%s", c.index, plan)
			}
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("plan reads the whole table:\n%s", plan)
			}
		})
	}
}

func explain(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args []any) string {
	t.Helper()
	rows, err := conn.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
