// Package store is the sink's durable frame store.
//
// Each motion frame is stored once, keyed by its frame id: the JPEG goes to
//
//	<dir>/frames/<site>/<camera>/<YYYY-MM-DD>/<frameid>.jpg
//
// (the date is the capture time's UTC date) and its metadata to a bbolt
// index at <dir>/index.db. A second Put of an id that is already indexed
// changes nothing, also across restarts.
//
// Crash safety: Put writes the JPEG atomically (temporary file in the same
// directory, write, fsync, rename, fsync directory) before it commits the
// index transaction, so an indexed frame always has its file. A crash
// between the two leaves a file without an index entry; the next Put of
// that id indexes it (reusing the file when its bytes match), and Verify
// reports such files.
//
// Index buckets:
//
//	frames       frame id                                     -> JSON record (metadata + relative path)
//	by_time      camera 0x00 time(8) 0x00 frame id            -> empty
//	by_time_all  time(8) 0x00 frame id                        -> empty
//	meta         "schema", "frames", "bytes"                  -> big-endian uint64
//
// time(8) is the capture time as big-endian Unix nanoseconds with the sign
// bit flipped, so byte order is time order. Both time buckets therefore
// iterate in (capture time, frame id) order, which makes List's pagination a
// plain cursor seek.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned (wrapped) by the store; test with errors.Is.
var (
	ErrNotFound         = errors.New("store: frame not found")
	ErrInvalidID        = errors.New("store: invalid id")
	ErrInvalidFrame     = errors.New("store: invalid frame")
	ErrInvalidPageToken = errors.New("store: invalid page token")
	ErrInvalidQuery     = errors.New("store: invalid query")
	ErrCorrupt          = errors.New("store: stored frame is corrupt")
	ErrClosed           = errors.New("store: closed")
)

// Box is a motion bounding box in pixels.
type Box struct {
	X, Y, Width, Height int32
}

// FrameMeta is the metadata of one stored frame.
type FrameMeta struct {
	FrameID         string
	Site            string
	CameraID        string
	SessionEpoch    uint64
	Sequence        uint64
	CaptureTime     time.Time
	StoredTime      time.Time
	MotionScore     float64
	Boxes           []Box
	Width, Height   int32
	ContentSHA256   string // lowercase hex of the JPEG's SHA-256
	SizeBytes       int64
	CaptureNode     string
	EnrichNode      string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
}

// Query selects frames for List.
type Query struct {
	CameraID  string    // empty: all cameras
	Start     time.Time // inclusive; zero: unbounded
	End       time.Time // exclusive; zero: unbounded
	Limit     int       // <= 0: DefaultListLimit; capped at MaxListLimit
	PageToken string    // from a previous List with the same query
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Stats are the store's counters, kept in the index.
type Stats struct {
	Frames         uint64 // frames indexed
	Bytes          uint64 // sum of their JPEG sizes
	IndexFileBytes int64  // size of index.db
}

const (
	indexFile  = "index.db"
	framesDir  = "frames"
	schemaV1   = 1
	lockStripe = 64
	// lockTimeout bounds Open's wait for another holder of index.db.
	lockTimeout = 5 * time.Second
)

var (
	bucketFrames    = []byte("frames")
	bucketByTime    = []byte("by_time")
	bucketByTimeAll = []byte("by_time_all")
	bucketMeta      = []byte("meta")

	keySchema = []byte("schema")
	keyFrames = []byte("frames")
	keyBytes  = []byte("bytes")
)

// Store is a frame store. It is safe for concurrent use. One directory can
// be open by one Store at a time (bbolt holds a file lock on index.db).
type Store struct {
	dir       string
	framesDir string
	db        *bolt.DB
	log       *slog.Logger
	now       func() time.Time
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// idLocks serialise Puts of the same frame id (striped by hash) so
	// that concurrent replays never race on the frame's file.
	idLocks [lockStripe]sync.Mutex
}

// record is the JSON form of a frame in the frames bucket. Its field names
// are part of the on-disk format.
type record struct {
	V               int       `json:"v"`
	Path            string    `json:"path"` // relative to the store dir, '/'-separated
	FrameID         string    `json:"frame_id"`
	Site            string    `json:"site"`
	CameraID        string    `json:"camera_id"`
	SessionEpoch    uint64    `json:"session_epoch"`
	Sequence        uint64    `json:"sequence"`
	CaptureTime     time.Time `json:"capture_time"`
	StoredTime      time.Time `json:"stored_time"`
	MotionScore     float64   `json:"motion_score"`
	Boxes           []Box     `json:"boxes,omitempty"`
	Width           int32     `json:"width"`
	Height          int32     `json:"height"`
	ContentSHA256   string    `json:"sha256"`
	SizeBytes       int64     `json:"size"`
	CaptureNode     string    `json:"capture_node,omitempty"`
	EnrichNode      string    `json:"enrich_node,omitempty"`
	SourceTopic     string    `json:"source_topic,omitempty"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
}

func recordFromMeta(m FrameMeta, relPath string) record {
	return record{
		V: schemaV1, Path: relPath,
		FrameID: m.FrameID, Site: m.Site, CameraID: m.CameraID,
		SessionEpoch: m.SessionEpoch, Sequence: m.Sequence,
		CaptureTime: m.CaptureTime, StoredTime: m.StoredTime,
		MotionScore: m.MotionScore, Boxes: m.Boxes, Width: m.Width, Height: m.Height,
		ContentSHA256: m.ContentSHA256, SizeBytes: m.SizeBytes,
		CaptureNode: m.CaptureNode, EnrichNode: m.EnrichNode,
		SourceTopic: m.SourceTopic, SourcePartition: m.SourcePartition, SourceOffset: m.SourceOffset,
	}
}

func (r record) meta() FrameMeta {
	var boxes []Box
	if len(r.Boxes) > 0 {
		boxes = append([]Box(nil), r.Boxes...)
	}
	return FrameMeta{
		FrameID: r.FrameID, Site: r.Site, CameraID: r.CameraID,
		SessionEpoch: r.SessionEpoch, Sequence: r.Sequence,
		CaptureTime: r.CaptureTime.UTC(), StoredTime: r.StoredTime.UTC(),
		MotionScore: r.MotionScore, Boxes: boxes, Width: r.Width, Height: r.Height,
		ContentSHA256: r.ContentSHA256, SizeBytes: r.SizeBytes,
		CaptureNode: r.CaptureNode, EnrichNode: r.EnrichNode,
		SourceTopic: r.SourceTopic, SourcePartition: r.SourcePartition, SourceOffset: r.SourceOffset,
	}
}

func decodeRecord(id string, v []byte) (record, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("%w: decode index record of frame %q: %v", ErrCorrupt, id, err)
	}
	if r.V != schemaV1 {
		return record{}, fmt.Errorf("%w: index record of frame %q has unknown version %d", ErrCorrupt, id, r.V)
	}
	return r, nil
}

// Open opens (creating if needed) the store in dir. logger may be nil.
// Open does not scan the frame files; use Verify for that.
func Open(ctx context.Context, dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if dir == "" {
		return nil, errors.New("open store: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("open store: create %s: %w", abs, err)
	}
	fdir := filepath.Join(abs, framesDir)
	if err := ensureDir(abs, fdir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
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
		for _, name := range [][]byte{bucketFrames, bucketByTime, bucketByTimeAll} {
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
		frames = getU64(mb, keyFrames)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open index %s: %w", dbPath, err)
	}
	s := &Store{dir: abs, framesDir: fdir, db: db, log: logger, now: time.Now}
	logger.Info("frame store opened", "dir", abs, "frames", frames)
	return s, nil
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

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

// relPath is the frame's file path relative to the store dir, '/'-separated.
func relPath(m FrameMeta) string {
	day := m.CaptureTime.UTC().Format("2006-01-02")
	return path.Join(framesDir, m.Site, m.CameraID, day, m.FrameID+".jpg")
}

// prepare validates meta and jpeg and returns the normalised metadata.
func (s *Store) prepare(meta FrameMeta, jpeg []byte) (FrameMeta, error) {
	if err := ValidateFrameID(meta.FrameID); err != nil {
		return FrameMeta{}, err
	}
	id := meta.FrameID
	if err := validateName("camera id", meta.CameraID); err != nil {
		return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
	}
	if err := validateName("site", meta.Site); err != nil {
		return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
	}
	if meta.CaptureTime.IsZero() {
		return FrameMeta{}, fmt.Errorf("%w: frame %q has no capture time", ErrInvalidFrame, id)
	}
	if !timeRepresentable(meta.CaptureTime) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q capture time %s is outside %d..%d", ErrInvalidFrame, id,
			meta.CaptureTime, minTime.Year(), maxTime.Year())
	}
	if len(jpeg) == 0 {
		return FrameMeta{}, fmt.Errorf("%w: frame %q has no JPEG data", ErrInvalidFrame, id)
	}
	if meta.SizeBytes != 0 && meta.SizeBytes != int64(len(jpeg)) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q size_bytes %d but JPEG has %d bytes", ErrInvalidFrame, id, meta.SizeBytes, len(jpeg))
	}
	sum := sha256.Sum256(jpeg)
	digest := hex.EncodeToString(sum[:])
	if meta.ContentSHA256 != "" && !equalFoldASCII(meta.ContentSHA256, digest) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q content_sha256 %s does not match JPEG (%s)", ErrInvalidFrame, id, meta.ContentSHA256, digest)
	}
	meta.ContentSHA256 = digest
	meta.SizeBytes = int64(len(jpeg))
	meta.CaptureTime = meta.CaptureTime.Round(0).UTC()
	if meta.StoredTime.IsZero() {
		meta.StoredTime = s.now()
	}
	meta.StoredTime = meta.StoredTime.Round(0).UTC()
	if len(meta.Boxes) > 0 {
		meta.Boxes = append([]Box(nil), meta.Boxes...)
	} else {
		meta.Boxes = nil
	}
	return meta, nil
}

func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b))
}

// Put stores a frame once. It returns stored=false, and changes nothing,
// when meta.FrameID is already indexed (a replay), whatever meta and jpeg
// hold then. Put fills in ContentSHA256 and SizeBytes (checking them when
// given) and StoredTime when zero.
//
// If the frame's file exists but the id is not indexed (a crash came
// between a previous Put's file write and its index commit), Put indexes
// the frame: it keeps the file when its bytes equal jpeg and otherwise
// replaces it atomically, since an unindexed file was never stored.
func (s *Store) Put(ctx context.Context, meta FrameMeta, jpeg []byte) (stored bool, err error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("put frame %q: %w", meta.FrameID, err)
	}
	meta, err = s.prepare(meta, jpeg)
	if err != nil {
		return false, fmt.Errorf("put: %w", err)
	}
	id := meta.FrameID
	mu := s.idLock(id)
	mu.Lock()
	defer mu.Unlock()

	existing, found, err := s.lookup(id)
	if err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}
	if found {
		if existing.ContentSHA256 != meta.ContentSHA256 {
			s.log.Warn("replayed frame has different content; keeping the stored one",
				"frame_id", id, "stored_sha256", existing.ContentSHA256, "replay_sha256", meta.ContentSHA256)
		} else {
			s.log.Debug("frame already stored", "frame_id", id)
		}
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}

	rel := relPath(meta)
	abs := filepath.Join(s.dir, filepath.FromSlash(rel))
	reused, err := s.writeFrameFile(abs, jpeg, meta.ContentSHA256)
	if err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}

	// The file is durable; commit the index. From here on the context is
	// not consulted, so that a cancelled caller does not leave an
	// unindexed file behind.
	rec, err := json.Marshal(recordFromMeta(meta, rel))
	if err != nil {
		return false, fmt.Errorf("put frame %q: encode record: %w", id, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		stored = false
		fb := tx.Bucket(bucketFrames)
		if fb.Get([]byte(id)) != nil {
			return nil
		}
		if err := fb.Put([]byte(id), rec); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByTime).Put(timeKey(cameraPrefix(meta.CameraID), meta.CaptureTime, id), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByTimeAll).Put(timeKey(nil, meta.CaptureTime, id), nil); err != nil {
			return err
		}
		mb := tx.Bucket(bucketMeta)
		if err := mb.Put(keyFrames, u64(getU64(mb, keyFrames)+1)); err != nil {
			return err
		}
		if err := mb.Put(keyBytes, u64(getU64(mb, keyBytes)+uint64(meta.SizeBytes))); err != nil {
			return err
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put frame %q: commit index (file %s already written): %w", id, rel, dbErr(err))
	}
	if reused {
		s.log.Info("indexed frame whose file existed without an index entry", "frame_id", id, "path", rel)
	}
	s.log.Debug("frame stored", "frame_id", id, "camera_id", meta.CameraID, "path", rel, "size", meta.SizeBytes)
	return stored, nil
}

// writeFrameFile makes abs hold jpeg durably. If abs already holds exactly
// jpeg (left by an interrupted Put) it is kept and reused=true.
func (s *Store) writeFrameFile(abs string, jpeg []byte, digest string) (reused bool, err error) {
	old, err := os.ReadFile(abs)
	switch {
	case err == nil:
		sum := sha256.Sum256(old)
		if hex.EncodeToString(sum[:]) == digest {
			// Its rename may not have been made durable yet.
			if err := syncDir(filepath.Dir(abs)); err != nil {
				return false, err
			}
			return true, nil
		}
		s.log.Warn("replacing unindexed frame file with different content", "path", abs,
			"old_size", len(old), "new_size", len(jpeg))
	case errors.Is(err, fs.ErrNotExist):
	default:
		return false, fmt.Errorf("read existing %s: %w", abs, err)
	}
	if err := ensureDir(s.framesDir, filepath.Dir(abs)); err != nil {
		return false, err
	}
	if err := writeFileAtomic(abs, jpeg); err != nil {
		return false, err
	}
	return false, nil
}

// lookup reads the index record of id.
func (s *Store) lookup(id string) (rec record, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFrames).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		rec, err = decodeRecord(id, v)
		return err
	})
	return rec, found, dbErr(err)
}

// Get returns a frame's metadata and JPEG. It returns an error wrapping
// ErrNotFound when the id is not indexed, and ErrCorrupt when the indexed
// file is missing or its content does not match the recorded SHA-256.
func (s *Store) Get(ctx context.Context, frameID string) (FrameMeta, []byte, error) {
	if err := s.check(ctx); err != nil {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if err := ValidateFrameID(frameID); err != nil {
		return FrameMeta{}, nil, fmt.Errorf("get: %w", err)
	}
	rec, found, err := s.lookup(frameID)
	if err != nil {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if !found {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w", frameID, ErrNotFound)
	}
	abs := filepath.Join(s.dir, filepath.FromSlash(rec.Path))
	data, err := os.ReadFile(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: indexed file %s is missing", frameID, ErrCorrupt, rec.Path)
		}
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: read %s: %w", frameID, abs, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != rec.ContentSHA256 {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: file %s has sha256 %s, index has %s",
			frameID, ErrCorrupt, rec.Path, got, rec.ContentSHA256)
	}
	return rec.meta(), data, nil
}

// Count returns the number of frames indexed.
func (s *Store) Count(ctx context.Context) (uint64, error) {
	st, err := s.Stats(ctx)
	return st.Frames, err
}

// Stats returns the store's counters. It reads a few keys; no scan.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	if err := s.check(ctx); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	var st Stats
	err := s.db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		st.Frames = getU64(mb, keyFrames)
		st.Bytes = getU64(mb, keyBytes)
		st.IndexFileBytes = tx.Size()
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	return st, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
