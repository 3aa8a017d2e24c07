// Package store is the sink's durable frame store.
//
// Each motion frame is stored once, keyed by its frame id. Its JPEG (and
// its thumbnail, when enrich made one) go to an object backend (Objects: a
// directory or an S3 bucket) under
//
//	frames/<site>/<camera>/<YYYY-MM-DD>/<frameid>.jpg
//	thumbs/<site>/<camera>/<YYYY-MM-DD>/<frameid>.jpg
//	meta/<site>/<camera>/<YYYY-MM-DD>/<frameid>.json
//
// The meta object is what the index holds of the frame (its JSON record),
// written after the pictures and before the index commit: the index can
// be rebuilt from the objects alone (Rebuild).
//
// (the date is the capture time's UTC date) and its metadata to an Index:
// a bbolt file at <dir>/index.db on the sink's local disk (the embedded
// default), or PostgreSQL (OpenPostgres), which sink replicas share. A
// second Put of an id that is already indexed, or that retention deleted,
// changes nothing, also across restarts and across replicas.
//
// Crash safety: Put writes the objects (atomically, durably) before it
// commits the index transaction, so an indexed frame always has its object.
// A crash between the two leaves an object without an index entry; the
// next Put of that id indexes it, and Verify reports such objects.
// Retention deletes index entries first and objects after, so a crash in
// between leaves unindexed objects, never index entries without objects.
//
// The bbolt index's buckets:
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
	"sync"
	"sync/atomic"
	"time"
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
	framesDir  = "frames"
	thumbsDir  = "thumbs"
	metaDir    = "meta"
	lockStripe = 64
)

// Store is a frame store. It is safe for concurrent use. Its objects
// should belong to one index; several Stores (sink replicas) may share one
// index and object location when the index is shared (PostgreSQL).
type Store struct {
	dir       string
	objects   Objects
	index     Index
	log       *slog.Logger
	now       func() time.Time
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// idLocks serialise Puts of the same frame id (striped by hash) so
	// that concurrent replays in one process never race on the frame's
	// object. Across processes the index's idempotent Insert decides.
	idLocks [lockStripe]sync.Mutex
	// retentionMu keeps retention and Put from interleaving their object
	// deletes and writes of one frame.
	retentionMu sync.Mutex
}

// Open opens (creating if needed) a store whose index and frame files both
// live in dir (the filesystem backend and the bbolt index). logger may be
// nil.
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

// OpenWith opens (creating if needed) a store with its bbolt index in
// indexDir and its objects in objs. Open does not scan the objects; use
// Verify.
func OpenWith(ctx context.Context, indexDir string, objs Objects, logger *slog.Logger) (*Store, error) {
	idx, err := openBolt(ctx, indexDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s, err := New(ctx, idx, objs, logger)
	if err != nil {
		_ = idx.Close()
		return nil, err
	}
	s.dir = idx.dir
	return s, nil
}

// New makes a store of an open index and an object backend; the store
// owns the index from then on (Close closes it). logger may be nil.
func New(ctx context.Context, idx Index, objs Objects, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	frames, err := idx.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("open store: %s: %w", idx.Describe(), err)
	}
	s := &Store{objects: objs, index: idx, log: logger, now: time.Now}
	logger.Info("frame store opened", "index", idx.Describe(), "objects", objs.Describe(), "frames", frames)
	return s, nil
}

// Dir returns the store's absolute index directory ("" unless the index is
// the bbolt file).
func (s *Store) Dir() string { return s.dir }

// Objects returns the object backend.
func (s *Store) Objects() Objects { return s.objects }

// Index returns the index.
func (s *Store) Index() Index { return s.index }

// Close closes the index. It waits for running transactions; later calls
// return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.index.Close()
		s.log.Info("frame store closed", "index", s.index.Describe())
	})
	return s.closeErr
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *Store) idLock(id string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return &s.idLocks[h.Sum32()%lockStripe]
}
