// Package store is the sink's durable frame store.
//
// Each motion frame is stored once, keyed by its frame id. Its JPEG (and
// its thumbnail, when enrich made one) go to an object backend (Objects: a
// directory or an S3 bucket) under
//
//	frames/<site>/<camera>/<YYYY-MM-DD>/<frameid>.jpg
//	thumbs/<site>/<camera>/<YYYY-MM-DD>/<frameid>.jpg
//
// (the date is the capture time's UTC date) and its metadata to a bbolt
// index at <dir>/index.db on the sink's local disk. A second Put of an id
// that is already indexed, or that retention deleted, changes nothing, also
// across restarts.
//
// Crash safety: Put writes the objects (atomically, durably) before it
// commits the index transaction, so an indexed frame always has its object.
// A crash between the two leaves an object without an index entry; the
// next Put of that id indexes it, and Verify reports such objects.
// Retention deletes index entries first and objects after, so a crash in
// between leaves unindexed objects, never index entries without objects.
//
// Index buckets:
//
//	frames          frame id                                -> JSON record (metadata + object keys)
//	by_time         camera 0x00 time(8) 0x00 frame id       -> empty
//	by_time_all     time(8) 0x00 frame id                   -> empty
//	by_event        event id 0x00 time(8) 0x00 frame id     -> empty
//	events          event id                                -> JSON event (aggregated from its frames)
//	ev_by_time      camera 0x00 start(8) 0x00 event id      -> empty
//	ev_by_time_all  start(8) 0x00 event id                  -> empty
//	cameras         camera id                               -> JSON counters (frames, bytes, events)
//	deleted         frame id                                -> time(8) of its deletion by retention
//	meta            "schema", "frames", "bytes", "events", "expired" -> big-endian uint64
//
// time(8) is the capture time as big-endian Unix nanoseconds with the sign
// bit flipped, so byte order is time order. The time buckets therefore
// iterate in (time, id) order, which makes pagination a plain cursor seek.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned (wrapped) by the store; test with errors.Is.
var (
	ErrNotFound         = errors.New("store: not found")
	ErrInvalidID        = errors.New("store: invalid id")
	ErrInvalidFrame     = errors.New("store: invalid frame")
	ErrInvalidPageToken = errors.New("store: invalid page token")
	ErrInvalidQuery     = errors.New("store: invalid query")
	ErrCorrupt          = errors.New("store: stored frame is corrupt")
	ErrClosed           = errors.New("store: closed")
)

const (
	indexFile  = "index.db"
	framesDir  = "frames"
	thumbsDir  = "thumbs"
	schemaV1   = 1
	lockStripe = 64
	// lockTimeout bounds Open's wait for another holder of index.db.
	lockTimeout = 5 * time.Second
)

// Store is a frame store. It is safe for concurrent use. One index
// directory can be open by one Store at a time (bbolt holds a file lock on
// index.db); one object location should belong to one index.
type Store struct {
	dir       string
	objects   Objects
	db        *bolt.DB
	log       *slog.Logger
	now       func() time.Time
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// idLocks serialise Puts of the same frame id (striped by hash) so
	// that concurrent replays never race on the frame's object.
	idLocks [lockStripe]sync.Mutex
	// eventMu serialises index updates of events (read-modify-write of
	// aggregates happens inside one bbolt transaction, which bbolt already
	// serialises; this only keeps retention and Put from interleaving
	// their object deletes and writes of one frame).
	retentionMu sync.Mutex
}

// Open opens (creating if needed) a store whose index and frame files both
// live in dir (the filesystem backend). logger may be nil.
func Open(ctx context.Context, dir string, logger *slog.Logger) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open store: empty directory")
	}
	objs, err := NewFSObjects(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return OpenWith(ctx, dir, objs, logger)
}

// OpenWith opens (creating if needed) a store with its index in indexDir
// and its objects in objs. Open does not scan the objects; use Verify.
func OpenWith(ctx context.Context, indexDir string, objs Objects, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", indexDir, err)
	}
	if indexDir == "" {
		return nil, errors.New("open store: empty directory")
	}
	abs, err := filepath.Abs(indexDir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", indexDir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("open store: create %s: %w", abs, err)
	}
	dbPath := filepath.Join(abs, indexFile)
	// Wait for the file lock at most lockTimeout, or until ctx's deadline.
	timeout := lockTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open index %s: locked by another process or store: %w", dbPath, err)
		}
		return nil, fmt.Errorf("open index %s: %w", dbPath, err)
	}
	var frames uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFrames, bucketByTime, bucketByTimeAll, bucketByEvent, bucketEvents,
			bucketEvByTime, bucketEvByTimeAl, bucketDeleted} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			if mb, err = tx.CreateBucket(bucketMeta); err != nil {
				return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
			}
			if err := mb.Put(keySchema, u64(schemaV1)); err != nil {
				return err
			}
		}
		if v := getU64(mb, keySchema); v != schemaV1 {
			return fmt.Errorf("%w: index schema version %d, want %d", ErrCorrupt, v, schemaV1)
		}
		if tx.Bucket(bucketCameras) == nil {
			// An index from before per-camera counters: build them once.
			if err := rebuildCameraCounters(tx); err != nil {
				return fmt.Errorf("build camera counters: %w", err)
			}
		}
		frames = getU64(mb, keyFrames)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open index %s: %w", dbPath, err)
	}
	s := &Store{dir: abs, objects: objs, db: db, log: logger, now: time.Now}
	logger.Info("frame store opened", "index", abs, "objects", objs.Describe(), "frames", frames)
	return s, nil
}

// Dir returns the store's absolute index directory.
func (s *Store) Dir() string { return s.dir }

// Objects returns the object backend.
func (s *Store) Objects() Objects { return s.objects }

// Close closes the index. It waits for running transactions; later calls
// return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close index %s: %w", s.db.Path(), err)
		}
		s.log.Info("frame store closed", "dir", s.dir)
	})
	return s.closeErr
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// dbErr maps bbolt's not-open error (a Close raced the call) to ErrClosed.
func dbErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return err
}

func (s *Store) idLock(id string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return &s.idLocks[h.Sum32()%lockStripe]
}
