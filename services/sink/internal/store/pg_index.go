package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL index's migrations, applied in order of their number and
// recorded in schema_migrations; an index newer than the binary is refused.
//
//go:embed pgschema/*.sql
var pgMigrations embed.FS

// PostgresConfig is how the sink reaches its PostgreSQL index.
type PostgresConfig struct {
	// DSN is a libpq connection string or URL. A password in it is never
	// logged.
	DSN string
	// Schema holds the index's tables (created if missing); "" for the
	// connection's default (public). Several clouds, or tests, may share
	// one database this way.
	Schema string
	// MaxConns bounds the pool (0: pgx's default).
	MaxConns int32
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidSchemaName reports whether s may name the index's schema ("" is
// the connection's default).
func ValidSchemaName(s string) bool { return s == "" || schemaName.MatchString(s) }

// pgIndex is the shared Index: tables in PostgreSQL that every sink
// replica reads and writes. It is safe for concurrent use, by one process
// and by several.
type pgIndex struct {
	pool   *pgxpool.Pool
	schema string
	desc   string
	closed atomic.Bool
}

// OpenPostgres connects to the index, creating or migrating its tables.
// Replicas starting together migrate once (an advisory lock serialises
// them).
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (Index, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("open index: postgres DSN: %w", redactDSNError(err))
	}
	schema := cfg.Schema
	if schema == "" {
		schema = "public"
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("open index: postgres schema %q: want lowercase letters, digits and _", schema)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pcfg.ConnConfig.RuntimeParams["application_name"] = "cefiot-sink"
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	desc := fmt.Sprintf("postgres %s:%d/%s schema %s", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, schema)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", desc, err)
	}
	p := &pgIndex{pool: pool, schema: schema, desc: desc}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open index %s: %w", desc, err)
	}
	return p, nil
}

// redactDSNError keeps a password out of a DSN parse error.
func redactDSNError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("cannot parse the connection string (its text is not repeated, it may hold a password)")
	}
	return err
}

// migrate applies the embedded migrations the index lacks, in one
// transaction, under an advisory lock.
func (p *pgIndex) migrate(ctx context.Context) error {
	files, err := fs.Glob(pgMigrations, "pgschema/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(files)
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('cefiot-sink-index-' || $1))`, p.schema); err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{p.schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		latest := 0
		for _, f := range files {
			v, err := migrationVersion(f)
			if err != nil {
				return err
			}
			latest = max(latest, v)
			if v <= current {
				continue
			}
			sql, err := pgMigrations.ReadFile(f)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("apply migration %s: %w", f, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("record migration %s: %w", f, err)
			}
		}
		if current > latest {
			return fmt.Errorf("%w: index schema version %d is newer than this binary's %d", ErrCorrupt, current, latest)
		}
		return nil
	})
}

// migrationVersion is the number a migration's file name starts with.
func migrationVersion(name string) (int, error) {
	base := strings.TrimPrefix(name, "pgschema/")
	num, _, _ := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("migration %s: name must start with its number", name)
	}
	return v, nil
}

func (p *pgIndex) Describe() string { return p.desc }

// Close closes the pool; it waits for connections in use.
func (p *pgIndex) Close() error {
	if !p.closed.Swap(true) {
		p.pool.Close()
	}
	return nil
}

func (p *pgIndex) check(ctx context.Context) error {
	if p.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// pgRetry runs f in a transaction, again when PostgreSQL gives up on it
// for a deadlock or a serialization failure (replicas racing on one
// event or camera row).
func (p *pgIndex) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, p.pool, f)
		var pe *pgconn.PgError
		if err != nil && attempt < 5 && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

func (p *pgIndex) Lookup(ctx context.Context, id string) (Entry, bool, bool, error) {
	if err := p.check(ctx); err != nil {
		return Entry{}, false, false, err
	}
	var raw []byte
	err := p.pool.QueryRow(ctx, `SELECT meta FROM frames WHERE frame_id = $1`, id).Scan(&raw)
	switch {
	case err == nil:
		rec, err := decodePgRecord(id, raw)
		return rec.entry(), err == nil, false, err
	case !errors.Is(err, pgx.ErrNoRows):
		return Entry{}, false, false, fmt.Errorf("look up frame: %w", err)
	}
	var deleted bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deleted_frames WHERE frame_id = $1)`, id).Scan(&deleted); err != nil {
		return Entry{}, false, false, fmt.Errorf("look up deleted frame: %w", err)
	}
	return Entry{}, false, deleted, nil
}

func decodePgRecord(id string, raw []byte) (record, error) { return decodeRecord(id, raw) }

// Insert indexes e (see InsertBatch).
func (p *pgIndex) Insert(ctx context.Context, e Entry) (bool, error) {
	ins, err := p.InsertBatch(ctx, []Entry{e})
	if err != nil {
		return false, err
	}
	return ins[0], nil
}

const pgInsertFrame = `
INSERT INTO frames (frame_id, site, camera_id, capture_ns, motion_score, event_id, size_bytes, path, thumb_path, meta)
SELECT $1, $2, $3, $4, $5, NULLIF($6, ''), $7, $8, NULLIF($9, ''), $10
WHERE NOT EXISTS (SELECT 1 FROM deleted_frames WHERE frame_id = $1)
ON CONFLICT (frame_id) DO NOTHING`

// InsertBatch indexes es, their events and their cameras' counters in
// one transaction and three round trips; ON CONFLICT makes each frame
// once across replicas. Rows are locked in one order (frames by id, then
// events by id, then cameras by id), so that replicas' batches and
// retention never deadlock; PostgreSQL's verdict on a deadlock or a
// serialization failure is retried anyway.
func (p *pgIndex) InsertBatch(ctx context.Context, es []Entry) ([]bool, error) {
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	metas := make([][]byte, len(es))
	for i, e := range es {
		raw, err := json.Marshal(recordFromEntry(e))
		if err != nil {
			return nil, fmt.Errorf("encode record of frame %q: %w", e.Meta.FrameID, err)
		}
		metas[i] = raw
	}
	order := make([]int, len(es))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(es[a].Meta.FrameID, es[b].Meta.FrameID) })
	inserted := make([]bool, len(es))
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		clear(inserted)
		frames := &pgx.Batch{}
		for _, i := range order {
			e, m := es[i], es[i].Meta
			frames.Queue(pgInsertFrame, m.FrameID, m.Site, m.CameraID, m.CaptureTime.UnixNano(), m.MotionScore, m.EventID,
				m.SizeBytes, e.Path, e.ThumbPath, metas[i])
		}
		if err := execBatch(ctx, tx, frames, func(k int, tag pgconn.CommandTag) { inserted[order[k]] = tag.RowsAffected() == 1 }); err != nil {
			return fmt.Errorf("insert frames: %w", err)
		}
		var withEvent []int
		for _, i := range order {
			if inserted[i] && es[i].Meta.EventID != "" {
				withEvent = append(withEvent, i)
			}
		}
		slices.SortStableFunc(withEvent, func(a, b int) int { return strings.Compare(es[a].Meta.EventID, es[b].Meta.EventID) })
		type counts struct{ frames, bytes, events int64 }
		perCamera := map[string]*counts{}
		count := func(m FrameMeta) *counts {
			c := perCamera[m.CameraID]
			if c == nil {
				c = &counts{}
				perCamera[m.CameraID] = c
			}
			return c
		}
		for _, i := range order {
			if inserted[i] {
				c := count(es[i].Meta)
				c.frames++
				c.bytes += es[i].Meta.SizeBytes
			}
		}
		if len(withEvent) > 0 {
			events := &pgx.Batch{}
			for _, i := range withEvent {
				sql, args, err := pgEventUpsert(es[i].Meta)
				if err != nil {
					return err
				}
				events.Queue(sql, args...)
			}
			br := tx.SendBatch(ctx, events)
			for _, i := range withEvent {
				var created bool
				if err := br.QueryRow().Scan(&created); err != nil {
					_ = br.Close()
					return fmt.Errorf("add frame %s to event %s: %w", es[i].Meta.FrameID, es[i].Meta.EventID, err)
				}
				if created {
					count(es[i].Meta).events++
				}
			}
			if err := br.Close(); err != nil {
				return fmt.Errorf("add frames to events: %w", err)
			}
		}
		cameras := make([]string, 0, len(perCamera))
		for c := range perCamera {
			cameras = append(cameras, c)
		}
		slices.Sort(cameras)
		counters := &pgx.Batch{}
		for _, cam := range cameras {
			c := perCamera[cam]
			counters.Queue(`
INSERT INTO cameras AS c (camera_id, frames, bytes, events) VALUES ($1, $2, $3, $4)
ON CONFLICT (camera_id) DO UPDATE SET frames = c.frames + $2, bytes = c.bytes + $3, events = c.events + $4`,
				cam, c.frames, c.bytes, c.events)
		}
		if err := execBatch(ctx, tx, counters, nil); err != nil {
			return fmt.Errorf("count frames: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// execBatch sends b and reads every result; each reports the k-th.
func execBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch, each func(k int, tag pgconn.CommandTag)) error {
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for k := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return err
		}
		if each != nil {
			each(k, tag)
		}
	}
	return br.Close()
}

// pgEventUpsert adds frame m to its event (creating it): the same
// aggregate as the embedded index keeps. Its row tells whether the event
// was created.
func pgEventUpsert(m FrameMeta) (string, []any, error) {
	boxes, err := json.Marshal(nonNilBoxes(m.Boxes))
	if err != nil {
		return "", nil, err
	}
	var region Box
	for _, b := range m.Boxes {
		region = region.union(b)
	}
	x0, y0, x1, y1 := regionColumns(region)
	return `
INSERT INTO events AS e (event_id, site, camera_id, start_ns, end_ns, ended, frames, size_bytes, peak_score, best_frame_id, boxes,
    region_x0, region_y0, region_x1, region_y1, labels)
VALUES ($1, $2, $3, $4, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (event_id) DO UPDATE SET
    start_ns = least(e.start_ns, excluded.start_ns),
    end_ns = greatest(e.end_ns, excluded.end_ns),
    ended = e.ended OR excluded.ended,
    frames = e.frames + 1,
    size_bytes = e.size_bytes + excluded.size_bytes,
    best_frame_id = CASE WHEN excluded.peak_score > e.peak_score THEN excluded.best_frame_id ELSE e.best_frame_id END,
    boxes = CASE WHEN excluded.peak_score > e.peak_score THEN excluded.boxes ELSE e.boxes END,
    peak_score = greatest(e.peak_score, excluded.peak_score),
    region_x0 = least(e.region_x0, excluded.region_x0),
    region_y0 = least(e.region_y0, excluded.region_y0),
    region_x1 = greatest(e.region_x1, excluded.region_x1),
    region_y1 = greatest(e.region_y1, excluded.region_y1),
    labels = CASE WHEN excluded.labels <@ e.labels THEN e.labels
        ELSE ARRAY(SELECT DISTINCT l FROM unnest(e.labels || excluded.labels) AS l ORDER BY l) END
RETURNING (xmax = 0)`, []any{m.EventID, m.Site, m.CameraID, m.CaptureTime.UnixNano(), m.EventPhase == PhaseEnd, m.SizeBytes,
			m.MotionScore, m.FrameID, boxes, x0, y0, x1, y1, labelNames([]string{}, m.Labels)}, nil
}

// regionColumns are a region's columns: NULL for an empty one (least and
// greatest skip NULLs, so the union with an empty region is the other).
func regionColumns(b Box) (x0, y0, x1, y1 *int32) {
	if b.empty() {
		return nil, nil, nil, nil
	}
	xe, ye := b.X+b.Width, b.Y+b.Height
	return &b.X, &b.Y, &xe, &ye
}

func regionFromColumns(x0, y0, x1, y1 *int32) Box {
	if x0 == nil || y0 == nil || x1 == nil || y1 == nil {
		return Box{}
	}
	return Box{X: *x0, Y: *y0, Width: *x1 - *x0, Height: *y1 - *y0}
}

func nonNilBoxes(b []Box) []Box {
	if b == nil {
		return []Box{}
	}
	return b
}

func (p *pgIndex) Count(ctx context.Context) (uint64, error) {
	if err := p.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	if err := p.pool.QueryRow(ctx, `SELECT coalesce(sum(frames), 0) FROM cameras`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count frames: %w", err)
	}
	return uint64(max(n, 0)), nil
}

// nsTime is the time of Unix nanoseconds, in UTC.
func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
