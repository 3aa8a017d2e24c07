package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCursor is a position in (time, id) order, as a page token carries it:
// the query kind, its scope (camera or event, "" for all) and the last
// row of the page.
type pgCursor struct {
	kind  byte
	scope string
	ns    int64
	id    string
}

func (c pgCursor) token() string {
	b := make([]byte, 0, 2+len(c.scope)+8+len(c.id))
	b = append(b, c.kind)
	b = append(b, c.scope...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(c.ns))
	b = append(b, c.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parsePgCursor decodes token, which must be of kind and scope.
func parsePgCursor(token string, kind byte, scope string) (pgCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return pgCursor{}, fmt.Errorf("%w: not base64url: %v", ErrInvalidPageToken, err)
	}
	if len(raw) == 0 {
		return pgCursor{}, fmt.Errorf("%w: empty", ErrInvalidPageToken)
	}
	if raw[0] != kind {
		return pgCursor{}, fmt.Errorf("%w: token belongs to a different kind of query", ErrInvalidPageToken)
	}
	rest := raw[1:]
	i := strings.IndexByte(string(rest), 0)
	if i < 0 || string(rest[:i]) != scope {
		return pgCursor{}, fmt.Errorf("%w: token belongs to a different camera or event", ErrInvalidPageToken)
	}
	rest = rest[i+1:]
	if len(rest) < 9 {
		return pgCursor{}, fmt.Errorf("%w: malformed key", ErrInvalidPageToken)
	}
	c := pgCursor{kind: kind, scope: scope, ns: int64(binary.BigEndian.Uint64(rest[:8])), id: string(rest[8:])}
	if validateName("id", c.id) != nil {
		return pgCursor{}, fmt.Errorf("%w: malformed key", ErrInvalidPageToken)
	}
	return c, nil
}

// nsBounds turns a [start, end) range into nanosecond bounds; empty is
// true when no representable time is in it.
func nsBounds(start, end time.Time) (lo, hi *int64, empty bool) {
	if !start.IsZero() {
		switch {
		case start.After(maxTime):
			return nil, nil, true
		case !start.Before(minTime):
			v := start.UnixNano()
			lo = &v
		}
	}
	if !end.IsZero() {
		switch {
		case !end.After(minTime):
			return nil, nil, true
		case !end.After(maxTime):
			v := end.UnixNano()
			hi = &v
		}
	}
	return lo, hi, false
}

// pgPage builds and runs one page of a (time, id)-ordered query over
// table, and returns the next page's token.
type pgPage struct {
	table, timeCol, idCol string
	where                 []string
	args                  []any
	kind                  byte
	scope                 string
	start, end            time.Time
	limit                 int
	token                 string
	desc                  bool
}

func (q *pgPage) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// build returns the page's SQL and arguments; empty when no time of the
// range is representable (no query to run).
func (q *pgPage) build(columns string) (sql string, args []any, empty bool, err error) {
	lo, hi, empty := nsBounds(q.start, q.end)
	if empty {
		return "", nil, true, nil
	}
	if q.token != "" {
		c, err := parsePgCursor(q.token, q.kind, q.scope)
		if err != nil {
			return "", nil, false, err
		}
		op := ">"
		if q.desc {
			op = "<"
		}
		q.where = append(q.where, fmt.Sprintf("(%s, %s) %s (%s, %s)", q.timeCol, q.idCol, op, q.arg(c.ns), q.arg(c.id)))
	}
	if lo != nil {
		q.where = append(q.where, q.timeCol+" >= "+q.arg(*lo))
	}
	if hi != nil {
		q.where = append(q.where, q.timeCol+" < "+q.arg(*hi))
	}
	order := "ASC"
	if q.desc {
		order = "DESC"
	}
	sql = "SELECT " + columns + " FROM " + q.table
	if len(q.where) > 0 {
		sql += " WHERE " + strings.Join(q.where, " AND ")
	}
	sql += fmt.Sprintf(" ORDER BY %s %s, %s %s LIMIT %s", q.timeCol, order, q.idCol, order, q.arg(q.limit+1))
	return sql, q.args, false, nil
}

// run queries the page: columns are selected, each row scanned by scan,
// which returns the row's time and id for the cursor.
func (q *pgPage) run(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, columns string, scan func(pgx.Rows) (int64, string, error)) (string, error) {
	sql, args, empty, err := q.build(columns)
	if empty || err != nil {
		return "", err
	}
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return "", fmt.Errorf("query %s: %w", q.table, err)
	}
	defer rows.Close()
	n := 0
	var last pgCursor
	more := false
	for rows.Next() {
		if n == q.limit {
			more = true
			break
		}
		ns, id, err := scan(rows)
		if err != nil {
			return "", err
		}
		n++
		last = pgCursor{kind: q.kind, scope: q.scope, ns: ns, id: id}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("query %s: %w", q.table, err)
	}
	if more {
		return last.token(), nil
	}
	return "", nil
}

// framesPage is the page of frames q asks for.
func framesPage(q Query) pgPage {
	pg := pgPage{table: "frames", timeCol: "capture_ns", idCol: "frame_id", kind: tokenAll,
		start: q.Start, end: q.End, limit: q.Limit, token: q.PageToken}
	if q.CameraID != "" {
		pg.kind, pg.scope = tokenCamera, q.CameraID
		pg.where = append(pg.where, "camera_id = "+pg.arg(q.CameraID))
	}
	if q.EventID != "" {
		pg.kind, pg.scope = tokenEvent, q.EventID
		pg.where = append(pg.where, "event_id = "+pg.arg(q.EventID))
	}
	if q.MinScore != 0 {
		pg.where = append(pg.where, "motion_score >= "+pg.arg(q.MinScore))
	}
	return pg
}

// eventsPage is the page of events q asks for.
func eventsPage(q EventQuery) pgPage {
	pg := pgPage{table: "events", timeCol: "start_ns", idCol: "event_id", kind: tokenEventsAll,
		start: q.Start, end: q.End, limit: q.Limit, token: q.PageToken, desc: q.NewestFirst}
	if q.CameraID != "" {
		pg.kind, pg.scope = tokenEventsCamera, q.CameraID
		pg.where = append(pg.where, "camera_id = "+pg.arg(q.CameraID))
	}
	if q.NewestFirst {
		pg.kind = tokenEventsAllDesc
		if q.CameraID != "" {
			pg.kind = tokenEventsCameraDesc
		}
	}
	if q.MinScore != 0 {
		pg.where = append(pg.where, "peak_score >= "+pg.arg(q.MinScore))
	}
	if q.Label != "" {
		pg.where = append(pg.where, "labels @> ARRAY["+pg.arg(q.Label)+"]::text[]")
	}
	return pg
}

// ListFrames answers from frames_by_camera_time, frames_by_event or
// frames_by_time.
func (p *pgIndex) ListFrames(ctx context.Context, q Query) ([]FrameMeta, string, error) {
	if err := p.check(ctx); err != nil {
		return nil, "", err
	}
	pg := framesPage(q)
	var out []FrameMeta
	next, err := pg.run(ctx, p.pool, "frame_id, capture_ns, meta", func(rows pgx.Rows) (int64, string, error) {
		var id string
		var ns int64
		var raw []byte
		if err := rows.Scan(&id, &ns, &raw); err != nil {
			return 0, "", err
		}
		rec, err := decodeRecord(id, raw)
		if err != nil {
			return 0, "", err
		}
		out = append(out, rec.meta())
		return ns, id, nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

const pgEventColumns = `event_id, site, camera_id, start_ns, end_ns, ended, frames, size_bytes, peak_score, best_frame_id, boxes,
    region_x0, region_y0, region_x1, region_y1, labels`

func scanPgEvent(row pgx.Row) (Event, int64, error) {
	var e Event
	var start, end int64
	var boxes []byte
	var x0, y0, x1, y1 *int32
	if err := row.Scan(&e.EventID, &e.Site, &e.CameraID, &start, &end, &e.Ended, &e.Frames, &e.SizeBytes,
		&e.PeakScore, &e.BestFrameID, &boxes, &x0, &y0, &x1, &y1, &e.Labels); err != nil {
		return Event{}, 0, err
	}
	e.Start, e.End = nsTime(start), nsTime(end)
	if err := jsonUnmarshalBoxes(boxes, &e.Boxes); err != nil {
		return Event{}, 0, fmt.Errorf("%w: boxes of event %q: %v", ErrCorrupt, e.EventID, err)
	}
	e.Region = regionFromColumns(x0, y0, x1, y1)
	if len(e.Labels) == 0 {
		e.Labels = nil
	}
	return e, start, nil
}

func (p *pgIndex) GetEvent(ctx context.Context, id string) (Event, bool, error) {
	if err := p.check(ctx); err != nil {
		return Event{}, false, err
	}
	e, _, err := scanPgEvent(p.pool.QueryRow(ctx, `SELECT `+pgEventColumns+` FROM events WHERE event_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("read event: %w", err)
	}
	return e, true, nil
}

// ListEvents answers from events_by_camera_start or events_by_start.
func (p *pgIndex) ListEvents(ctx context.Context, q EventQuery) ([]Event, string, error) {
	if err := p.check(ctx); err != nil {
		return nil, "", err
	}
	pg := eventsPage(q)
	var out []Event
	next, err := pg.run(ctx, p.pool, pgEventColumns, func(rows pgx.Rows) (int64, string, error) {
		e, start, err := scanPgEvent(rows)
		if err != nil {
			return 0, "", err
		}
		out = append(out, e)
		return start, e.EventID, nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
