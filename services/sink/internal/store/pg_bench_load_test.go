package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The frames BenchmarkPostgresIndex loads: 100 cameras of one site, each
// storing a frame a second (frame i is camera i % 100's frame of second
// i / 100), in events of 25 frames. A tenth of the frames score 0.9 or
// more.
const (
	loadCameras     = 100
	loadEventFrames = 25
	loadEpoch       = 1732650000
	// loadChunk frames go in one statement (and transaction).
	loadChunk = 1_000_000
)

// loadUnit is what a size must be a multiple of: whole events of every
// camera.
const loadUnit = loadCameras * loadEventFrames

// loadTemplate is the meta of a loaded frame, the record Insert writes,
// with what varies from frame to frame left for SQL to fill in.
func loadTemplate() (string, error) {
	rec := recordFromEntry(Entry{Meta: FrameMeta{
		Site: "site-a", SessionEpoch: loadEpoch,
		Boxes: []Box{{X: 310, Y: 120, Width: 96, Height: 180}},
		Width: 1920, Height: 1080, ContentSHA256: strings.Repeat("7f", 32),
		CaptureNode: "edge-1", EnrichNode: "enrich-0", SourceTopic: "frames.enriched", SourcePartition: 3,
		Motion: true, ThumbnailBytes: 9000,
	}})
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode meta template: %w", err)
	}
	return string(raw), nil
}

// loadFramesSQL inserts frames [$1, $2) of the layout above; $3 is the
// meta template, $4 the first frame's capture time (Unix ns), $5 the
// session epoch of the frame ids.
const loadFramesSQL = `
INSERT INTO frames (frame_id, site, camera_id, capture_ns, motion_score, event_id, size_bytes, path, thumb_path, meta)
SELECT id, 'site-a', cam, ns, score, ev, size, 'frames/site-a/' || cam || '/' || day || '/' || id || '.jpg',
    'thumbs/site-a/' || cam || '/' || day || '/' || id || '.jpg',
    $3::jsonb || jsonb_build_object(
        'path', 'frames/site-a/' || cam || '/' || day || '/' || id || '.jpg',
        'thumb_path', 'thumbs/site-a/' || cam || '/' || day || '/' || id || '.jpg',
        'frame_id', id, 'camera_id', cam, 'sequence', s,
        'capture_time', to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'stored_time', to_char(ts + interval '1.5 seconds', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'motion_score', score, 'size', size, 'source_offset', i,
        'event_id', ev, 'event_phase', CASE s % 25 WHEN 0 THEN 1 WHEN 24 THEN 3 ELSE 2 END, 'event_frame_index', s % 25)
FROM generate_series($1::bigint, $2::bigint - 1) AS i
CROSS JOIN LATERAL (SELECT i % 100 AS c, i / 100 AS s) AS g
CROSS JOIN LATERAL (SELECT 'cam-' || c AS cam, $4::bigint + s * 1000000000 + c * 10000000 AS ns,
    ((s * 37 + c * 11) % 100)::float8 / 100 AS score, 80000 + (i * 7919) % 40000 AS size) AS f
CROSS JOIN LATERAL (SELECT cam || '_' || $5::bigint || '_' || lpad(s::text, 8, '0') AS id,
    cam || '-ev-' || (s / 25) AS ev, to_timestamp(ns / 1e9) AT TIME ZONE 'UTC' AS ts) AS h
CROSS JOIN LATERAL (SELECT to_char(ts, 'YYYY-MM-DD') AS day) AS d`

// loadEventsSQL aggregates the events of the frames captured in [$1, $2)
// (Unix ns) as Insert would have.
const loadEventsSQL = `
INSERT INTO events (event_id, site, camera_id, start_ns, end_ns, ended, frames, size_bytes, peak_score, best_frame_id, boxes,
    region_x0, region_y0, region_x1, region_y1)
SELECT event_id, site, camera_id, min(capture_ns), max(capture_ns), true, count(*), sum(size_bytes), max(motion_score),
    (array_agg(frame_id ORDER BY motion_score DESC, capture_ns, frame_id))[1], '[{"X":310,"Y":120,"Width":96,"Height":180}]',
    310, 120, 406, 300
FROM frames WHERE capture_ns >= $1 AND capture_ns < $2 AND event_id IS NOT NULL
GROUP BY event_id, site, camera_id`

// loadCountersSQL adds the frames and events captured in [$1, $2) to
// their cameras' counters.
const loadCountersSQL = `
INSERT INTO cameras AS c (camera_id, frames, bytes, events)
SELECT camera_id, sum(frames), sum(bytes), sum(events) FROM (
    SELECT camera_id, count(*) AS frames, sum(size_bytes) AS bytes, 0 AS events FROM frames
    WHERE capture_ns >= $1 AND capture_ns < $2 GROUP BY camera_id
    UNION ALL
    SELECT camera_id, 0, 0, count(*) FROM events WHERE start_ns >= $1 AND start_ns < $2 GROUP BY camera_id
) AS n GROUP BY camera_id
ON CONFLICT (camera_id) DO UPDATE SET frames = c.frames + excluded.frames, bytes = c.bytes + excluded.bytes,
    events = c.events + excluded.events`

// loadFrames adds frames [from, to) of the layout to the index's tables
// behind conn (search_path set to its schema), their events and counters,
// chunk by chunk, then vacuums and analyzes the tables as autovacuum
// would have by then. from and to are multiples of loadUnit.
func loadFrames(ctx context.Context, conn *pgx.Conn, from, to int64) error {
	if from%loadUnit != 0 || to%loadUnit != 0 {
		return fmt.Errorf("load frames [%d, %d): not whole events of every camera (multiples of %d)", from, to, loadUnit)
	}
	tmpl, err := loadTemplate()
	if err != nil {
		return err
	}
	secondNS := func(frame int64) int64 { return base.UnixNano() + frame/loadCameras*int64(time.Second) }
	for lo := from; lo < to; lo += loadChunk {
		hi := min(lo+loadChunk, to)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, loadFramesSQL, lo, hi, tmpl, base.UnixNano(), loadEpoch); err != nil {
				return fmt.Errorf("insert frames: %w", err)
			}
			if _, err := tx.Exec(ctx, loadEventsSQL, secondNS(lo), secondNS(hi)); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
			if _, err := tx.Exec(ctx, loadCountersSQL, secondNS(lo), secondNS(hi)); err != nil {
				return fmt.Errorf("count frames: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load frames [%d, %d): %w", lo, hi, err)
		}
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) frames, events, cameras`); err != nil {
		return fmt.Errorf("vacuum the loaded tables: %w", err)
	}
	return nil
}
