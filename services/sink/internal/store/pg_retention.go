package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

func jsonUnmarshalBoxes(raw []byte, out *[]Box) error {
	var boxes []Box
	if err := json.Unmarshal(raw, &boxes); err != nil {
		return err
	}
	if len(boxes) > 0 {
		*out = boxes
	}
	return nil
}

// Expired walks camera's frames oldest first (frames_by_camera_time), as
// the embedded index does.
func (p *pgIndex) Expired(ctx context.Context, camera string, pol RetentionPolicy, now time.Time, limit int) ([]string, error) {
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	var bytesLeft int64
	err := p.pool.QueryRow(ctx, `SELECT coalesce((SELECT bytes FROM cameras WHERE camera_id = $1), 0)`, camera).Scan(&bytesLeft)
	if err != nil {
		return nil, fmt.Errorf("read camera counters: %w", err)
	}
	rows, err := p.pool.Query(ctx, `SELECT frame_id, capture_ns, size_bytes FROM frames WHERE camera_id = $1
ORDER BY capture_ns, frame_id LIMIT $2`, camera, limit)
	if err != nil {
		return nil, fmt.Errorf("read oldest frames: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		var ns, size int64
		if err := rows.Scan(&id, &ns, &size); err != nil {
			return nil, fmt.Errorf("read oldest frames: %w", err)
		}
		tooOld := pol.MaxAge > 0 && now.Sub(nsTime(ns)) > pol.MaxAge
		tooBig := pol.MaxBytes > 0 && bytesLeft > pol.MaxBytes
		if !tooOld && !tooBig {
			break
		}
		bytesLeft -= size
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read oldest frames: %w", err)
	}
	return ids, nil
}

// Delete removes the frames, then recomputes each of their events from
// the frames it keeps (its start, peak, best frame and boxes; its end,
// region and ended mark stay, as in the embedded index), then counts.
// Rows are taken in the order Insert takes them (frames, events, cameras)
// so that retention and replicas' inserts cannot deadlock.
func (p *pgIndex) Delete(ctx context.Context, ids []string, now time.Time) ([]Entry, error) {
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	var out []Entry
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `DELETE FROM frames WHERE frame_id = ANY($1) RETURNING frame_id, meta`, ids)
		if err != nil {
			return fmt.Errorf("delete frames: %w", err)
		}
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return err
			}
			rec, err := decodeRecord(id, raw)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, rec.entry())
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete frames: %w", err)
		}
		type counts struct{ frames, bytes, events int64 }
		perCamera := map[string]*counts{}
		events := map[string]string{} // event id -> camera
		deleted := make([]string, 0, len(out))
		for _, e := range out {
			c := perCamera[e.Meta.CameraID]
			if c == nil {
				c = &counts{}
				perCamera[e.Meta.CameraID] = c
			}
			c.frames++
			c.bytes += e.Meta.SizeBytes
			if e.Meta.EventID != "" {
				events[e.Meta.EventID] = e.Meta.CameraID
			}
			deleted = append(deleted, e.Meta.FrameID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deleted_frames (frame_id, deleted_at) SELECT unnest($1::text[]), $2
ON CONFLICT (frame_id) DO NOTHING`, deleted, now); err != nil {
			return fmt.Errorf("remember deleted frames: %w", err)
		}
		eventIDs := make([]string, 0, len(events))
		for id := range events {
			eventIDs = append(eventIDs, id)
		}
		slices.Sort(eventIDs)
		for _, id := range eventIDs {
			gone, err := pgRecomputeEvent(ctx, tx, id)
			if err != nil {
				return err
			}
			if gone {
				perCamera[events[id]].events++
			}
		}
		cameras := make([]string, 0, len(perCamera))
		for c := range perCamera {
			cameras = append(cameras, c)
		}
		slices.Sort(cameras)
		for _, cam := range cameras {
			c := perCamera[cam]
			if _, err := tx.Exec(ctx, `UPDATE cameras SET frames = greatest(frames - $2, 0), bytes = greatest(bytes - $3, 0),
events = greatest(events - $4, 0), expired = expired + $2 WHERE camera_id = $1`, cam, c.frames, c.bytes, c.events); err != nil {
				return fmt.Errorf("count deleted frames: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pgRecomputeEvent sets event id from its remaining frames, or deletes it
// when none remain (gone).
func pgRecomputeEvent(ctx context.Context, tx pgx.Tx, id string) (gone bool, err error) {
	var frames, size, start int64
	err = tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(size_bytes), 0), coalesce(min(capture_ns), 0) FROM frames WHERE event_id = $1`, id).
		Scan(&frames, &size, &start)
	if err != nil {
		return false, fmt.Errorf("recount event %s: %w", id, err)
	}
	if frames == 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM events WHERE event_id = $1`, id); err != nil {
			return false, fmt.Errorf("delete event %s: %w", id, err)
		}
		return true, nil
	}
	// The best frame: the highest score, the earliest on a tie (the first
	// the embedded index meets walking the event in time order).
	var best string
	var peak float64
	var raw []byte
	err = tx.QueryRow(ctx, `SELECT frame_id, motion_score, meta FROM frames WHERE event_id = $1
ORDER BY motion_score DESC, capture_ns, frame_id LIMIT 1`, id).Scan(&best, &peak, &raw)
	if err != nil {
		return false, fmt.Errorf("best frame of event %s: %w", id, err)
	}
	rec, err := decodeRecord(best, raw)
	if err != nil {
		return false, err
	}
	boxes, err := json.Marshal(nonNilBoxes(rec.Boxes))
	if err != nil {
		return false, err
	}
	labels, err := pgEventLabels(ctx, tx, id)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE events SET frames = $2, size_bytes = $3, start_ns = $4, best_frame_id = $5, peak_score = $6, boxes = $7, labels = $8
WHERE event_id = $1`, id, frames, size, start, best, peak, boxes, labels); err != nil {
		return false, fmt.Errorf("update event %s: %w", id, err)
	}
	return false, nil
}

// pgEventLabels is the sorted union of the labels of event id's frames.
func pgEventLabels(ctx context.Context, tx pgx.Tx, id string) ([]string, error) {
	var labels []string
	err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT l ORDER BY l), '{}') FROM frames,
    jsonb_array_elements(coalesce(meta->'labels', '[]'::jsonb)) AS x, jsonb_extract_path_text(x, 'name') AS l
WHERE event_id = $1`, id).Scan(&labels)
	if err != nil {
		return nil, fmt.Errorf("labels of event %s: %w", id, err)
	}
	return labels, nil
}

// Stats sums the camera counters; each camera's oldest and newest frame
// come from frames_by_camera_time (two index probes).
func (p *pgIndex) Stats(ctx context.Context, camera string) (Stats, error) {
	if err := p.check(ctx); err != nil {
		return Stats{}, err
	}
	var st Stats
	var frames, bytes, events, expired int64
	err := p.pool.QueryRow(ctx, `SELECT coalesce(sum(frames), 0), coalesce(sum(bytes), 0), coalesce(sum(events), 0), coalesce(sum(expired), 0)
FROM cameras`).Scan(&frames, &bytes, &events, &expired)
	if err != nil {
		return Stats{}, fmt.Errorf("read counters: %w", err)
	}
	st.Frames, st.Bytes, st.Events, st.Expired = uint64(frames), uint64(bytes), uint64(events), uint64(expired)
	err = p.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, p.schema).Scan(&st.IndexBytes)
	if err != nil {
		return Stats{}, fmt.Errorf("read index size: %w", err)
	}
	rows, err := p.pool.Query(ctx, `SELECT c.camera_id, c.frames, c.bytes, c.events,
    (SELECT capture_ns FROM frames f WHERE f.camera_id = c.camera_id ORDER BY capture_ns, frame_id LIMIT 1),
    (SELECT capture_ns FROM frames f WHERE f.camera_id = c.camera_id ORDER BY capture_ns DESC, frame_id DESC LIMIT 1)
FROM cameras c WHERE (c.frames > 0 OR c.events > 0) AND ($1 = '' OR c.camera_id = $1) ORDER BY c.camera_id`, camera)
	if err != nil {
		return Stats{}, fmt.Errorf("read cameras: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cs CameraStats
		var oldest, newest *int64
		if err := rows.Scan(&cs.CameraID, &cs.Frames, &cs.Bytes, &cs.Events, &oldest, &newest); err != nil {
			return Stats{}, fmt.Errorf("read cameras: %w", err)
		}
		if oldest != nil {
			cs.Oldest = nsTime(*oldest)
		}
		if newest != nil {
			cs.Newest = nsTime(*newest)
		}
		st.Cameras = append(st.Cameras, cs)
	}
	return st, rows.Err()
}

// Check reads every frame and compares the counters with them.
func (p *pgIndex) Check(ctx context.Context) (IndexCheck, error) {
	if err := p.check(ctx); err != nil {
		return IndexCheck{}, err
	}
	var out IndexCheck
	// One snapshot: the counters and the frames as of one moment.
	snapshot := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := pgx.BeginTxFunc(ctx, p.pool, snapshot, func(tx pgx.Tx) error {
		out = IndexCheck{}
		rows, err := tx.Query(ctx, `SELECT frame_id, meta FROM frames ORDER BY frame_id`)
		if err != nil {
			return fmt.Errorf("read frames: %w", err)
		}
		var bytesSum int64
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return err
			}
			out.Frames++
			rec, err := decodeRecord(id, raw)
			if err != nil {
				out.Problems = append(out.Problems, err.Error())
				continue
			}
			bytesSum += rec.SizeBytes
			out.Entries = append(out.Entries, rec.entry())
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read frames: %w", err)
		}
		var frames, bytes int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(frames), 0), coalesce(sum(bytes), 0) FROM cameras`).Scan(&frames, &bytes); err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		if frames != int64(out.Frames) {
			out.Problems = append(out.Problems, fmt.Sprintf("frame counter is %d, frames has %d", frames, out.Frames))
		}
		if bytes != bytesSum {
			out.Problems = append(out.Problems, fmt.Sprintf("byte counter is %d, records sum to %d", bytes, bytesSum))
		}
		return nil
	})
	return out, err
}
