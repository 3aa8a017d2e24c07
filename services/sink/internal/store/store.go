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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	ErrNotFound         = errors.New("store: not found")
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

func (b Box) empty() bool { return b.Width <= 0 || b.Height <= 0 }

func (b Box) union(o Box) Box {
	if b.empty() {
		return o
	}
	if o.empty() {
		return b
	}
	x0, y0 := min(b.X, o.X), min(b.Y, o.Y)
	x1, y1 := max(b.X+b.Width, o.X+o.Width), max(b.Y+b.Height, o.Y+o.Height)
	return Box{X: x0, Y: y0, Width: x1 - x0, Height: y1 - y0}
}

// Event phases of a frame (cefiot.v1.EventPhase values).
const (
	PhaseStart  = 1
	PhaseUpdate = 2
	PhaseEnd    = 3
)

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
	// EventID is the motion event of the frame ("" for none).
	EventID         string
	EventPhase      int32
	EventFrameIndex uint32
	// Motion is false for pre- and post-capture frames.
	Motion bool
	// ThumbnailBytes is the size of the stored thumbnail (0: none).
	ThumbnailBytes int64
}

// Event is a motion event, aggregated from its stored frames.
type Event struct {
	EventID     string
	Site        string
	CameraID    string
	Start, End  time.Time // capture times of its first and last stored frame
	Ended       bool      // its END frame is stored
	Frames      int64
	SizeBytes   int64
	PeakScore   float64
	BestFrameID string
	Boxes       []Box // of the best frame
	Region      Box   // union of all its boxes
}

// Query selects frames for List.
type Query struct {
	CameraID  string    // empty: all cameras
	EventID   string    // non-empty: only this event's frames
	Start     time.Time // inclusive; zero: unbounded
	End       time.Time // exclusive; zero: unbounded
	MinScore  float64   // only frames scoring at least this
	Limit     int       // <= 0: DefaultListLimit; capped at MaxListLimit
	PageToken string    // from a previous List with the same query
}

// EventQuery selects events for ListEvents by their start time.
type EventQuery struct {
	CameraID  string
	Start     time.Time
	End       time.Time
	MinScore  float64 // peak score at least this
	Limit     int
	PageToken string
	// NewestFirst lists in descending (start time, event id) order. Its
	// page tokens are not valid without it, nor the other way round.
	NewestFirst bool
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// CameraStats are one camera's numbers.
type CameraStats struct {
	CameraID       string
	Frames, Bytes  int64
	Events         int64
	Oldest, Newest time.Time // capture times; zero without frames
}

// Stats are the store's counters, kept in the index.
type Stats struct {
	Frames         uint64 // frames indexed
	Bytes          uint64 // sum of their JPEG sizes
	Events         uint64
	Expired        uint64 // frames deleted by retention, ever
	IndexFileBytes int64  // size of index.db
	Backend        string // Objects.Kind()
	Cameras        []CameraStats
}

const (
	indexFile  = "index.db"
	framesDir  = "frames"
	thumbsDir  = "thumbs"
	schemaV1   = 1
	lockStripe = 64
	// lockTimeout bounds Open's wait for another holder of index.db.
	lockTimeout = 5 * time.Second
)

var (
	bucketFrames     = []byte("frames")
	bucketByTime     = []byte("by_time")
	bucketByTimeAll  = []byte("by_time_all")
	bucketByEvent    = []byte("by_event")
	bucketEvents     = []byte("events")
	bucketEvByTime   = []byte("ev_by_time")
	bucketEvByTimeAl = []byte("ev_by_time_all")
	bucketCameras    = []byte("cameras")
	bucketDeleted    = []byte("deleted")
	bucketMeta       = []byte("meta")

	keySchema  = []byte("schema")
	keyFrames  = []byte("frames")
	keyBytes   = []byte("bytes")
	keyEvents  = []byte("events")
	keyExpired = []byte("expired")
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

// record is the JSON form of a frame in the frames bucket. Its field names
// are part of the on-disk format.
type record struct {
	V               int       `json:"v"`
	Path            string    `json:"path"` // object key of the JPEG
	ThumbPath       string    `json:"thumb_path,omitempty"`
	ThumbSize       int64     `json:"thumb_size,omitempty"`
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
	EventID         string    `json:"event_id,omitempty"`
	EventPhase      int32     `json:"event_phase,omitempty"`
	EventFrameIndex uint32    `json:"event_frame_index,omitempty"`
	Motion          bool      `json:"motion,omitempty"`
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
		EventID: m.EventID, EventPhase: m.EventPhase, EventFrameIndex: m.EventFrameIndex, Motion: m.Motion,
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
		EventID: r.EventID, EventPhase: r.EventPhase, EventFrameIndex: r.EventFrameIndex, Motion: r.Motion,
		ThumbnailBytes: r.ThumbSize,
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

// relPath is the frame's object key, '/'-separated.
func relPath(m FrameMeta) string { return objectKey(framesDir, m) }

func thumbPath(m FrameMeta) string { return objectKey(thumbsDir, m) }

func objectKey(top string, m FrameMeta) string {
	day := m.CaptureTime.UTC().Format("2006-01-02")
	return path.Join(top, m.Site, m.CameraID, day, m.FrameID+".jpg")
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
	if meta.EventID != "" {
		if err := validateName("event id", meta.EventID); err != nil {
			return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
		}
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
	meta.ThumbnailBytes = 0
	return meta, nil
}

func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b))
}

// Put stores a frame without a thumbnail; see PutFrame.
func (s *Store) Put(ctx context.Context, meta FrameMeta, jpeg []byte) (stored bool, err error) {
	return s.PutFrame(ctx, meta, jpeg, nil)
}

// PutFrame stores a frame (and its thumbnail, if any) once. It returns
// stored=false, and changes nothing, when meta.FrameID is already indexed
// or was deleted by retention (a replay), whatever meta and jpeg hold then.
// PutFrame fills in ContentSHA256 and SizeBytes (checking them when given)
// and StoredTime when zero, and adds the frame to its event.
//
// If the frame's object exists but the id is not indexed (a crash came
// between a previous Put's object write and its index commit), PutFrame
// writes the object again and indexes the frame.
func (s *Store) PutFrame(ctx context.Context, meta FrameMeta, jpeg, thumb []byte) (stored bool, err error) {
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
	if deleted, err := s.wasDeleted(id); err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	} else if deleted {
		s.log.Debug("frame was deleted by retention; not stored again", "frame_id", id)
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}

	rel := relPath(meta)
	if err := s.objects.Put(ctx, rel, jpeg); err != nil {
		return false, fmt.Errorf("put frame %q: write %s: %w", id, rel, err)
	}
	rec := recordFromMeta(meta, rel)
	if len(thumb) > 0 {
		tp := thumbPath(meta)
		if err := s.objects.Put(ctx, tp, thumb); err != nil {
			return false, fmt.Errorf("put frame %q: write thumbnail %s: %w", id, tp, err)
		}
		rec.ThumbPath, rec.ThumbSize = tp, int64(len(thumb))
	}

	// The objects are durable; commit the index. From here on the context
	// is not consulted, so that a cancelled caller does not leave an
	// unindexed object behind.
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("put frame %q: encode record: %w", id, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		stored = false
		fb := tx.Bucket(bucketFrames)
		if fb.Get([]byte(id)) != nil {
			return nil
		}
		if err := fb.Put([]byte(id), recJSON); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByTime).Put(timeKey(cameraPrefix(meta.CameraID), meta.CaptureTime, id), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByTimeAll).Put(timeKey(nil, meta.CaptureTime, id), nil); err != nil {
			return err
		}
		mb := tx.Bucket(bucketMeta)
		if err := addU64(mb, keyFrames, 1); err != nil {
			return err
		}
		if err := addU64(mb, keyBytes, meta.SizeBytes); err != nil {
			return err
		}
		newEvent := false
		if meta.EventID != "" {
			if err := tx.Bucket(bucketByEvent).Put(timeKey(cameraPrefix(meta.EventID), meta.CaptureTime, id), nil); err != nil {
				return err
			}
			var err error
			if newEvent, err = addToEvent(tx, rec); err != nil {
				return err
			}
		}
		if err := updateCamera(tx, meta.CameraID, func(c *cameraRecord) {
			c.Frames++
			c.Bytes += meta.SizeBytes
			if newEvent {
				c.Events++
			}
		}); err != nil {
			return err
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put frame %q: commit index (object %s already written): %w", id, rel, dbErr(err))
	}
	s.log.Debug("frame stored", "frame_id", id, "camera_id", meta.CameraID, "path", rel, "size", meta.SizeBytes)
	return stored, nil
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

func (s *Store) wasDeleted(id string) (bool, error) {
	var deleted bool
	err := s.db.View(func(tx *bolt.Tx) error {
		deleted = tx.Bucket(bucketDeleted).Get([]byte(id)) != nil
		return nil
	})
	return deleted, dbErr(err)
}

// Get returns a frame's metadata and JPEG. It returns an error wrapping
// ErrNotFound when the id is not indexed (or was deleted by retention), and
// ErrCorrupt when the indexed object is missing or its content does not
// match the recorded SHA-256.
func (s *Store) Get(ctx context.Context, frameID string) (FrameMeta, []byte, error) {
	rec, err := s.getRecord(ctx, frameID)
	if err != nil {
		return FrameMeta{}, nil, err
	}
	data, err := s.objects.Get(ctx, rec.Path)
	if err != nil {
		if errors.Is(err, ErrObjectNotFound) {
			return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: indexed object %s is missing", frameID, ErrCorrupt, rec.Path)
		}
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != rec.ContentSHA256 {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: object %s has sha256 %s, index has %s",
			frameID, ErrCorrupt, rec.Path, got, rec.ContentSHA256)
	}
	return rec.meta(), data, nil
}

// GetMeta returns a frame's metadata only.
func (s *Store) GetMeta(ctx context.Context, frameID string) (FrameMeta, error) {
	rec, err := s.getRecord(ctx, frameID)
	if err != nil {
		return FrameMeta{}, err
	}
	return rec.meta(), nil
}

// GetThumbnail returns a frame's thumbnail JPEG; ErrNotFound when the frame
// or its thumbnail is not stored.
func (s *Store) GetThumbnail(ctx context.Context, frameID string) ([]byte, error) {
	rec, err := s.getRecord(ctx, frameID)
	if err != nil {
		return nil, err
	}
	if rec.ThumbPath == "" {
		return nil, fmt.Errorf("get thumbnail of %q: %w: the frame has no thumbnail", frameID, ErrNotFound)
	}
	data, err := s.objects.Get(ctx, rec.ThumbPath)
	if err != nil {
		if errors.Is(err, ErrObjectNotFound) {
			return nil, fmt.Errorf("get thumbnail of %q: %w: indexed object %s is missing", frameID, ErrCorrupt, rec.ThumbPath)
		}
		return nil, fmt.Errorf("get thumbnail of %q: %w", frameID, err)
	}
	return data, nil
}

func (s *Store) getRecord(ctx context.Context, frameID string) (record, error) {
	if err := s.check(ctx); err != nil {
		return record{}, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if err := ValidateFrameID(frameID); err != nil {
		return record{}, fmt.Errorf("get: %w", err)
	}
	rec, found, err := s.lookup(frameID)
	if err != nil {
		return record{}, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if !found {
		if deleted, _ := s.wasDeleted(frameID); deleted {
			return record{}, fmt.Errorf("get frame %q: %w (deleted by retention)", frameID, ErrNotFound)
		}
		return record{}, fmt.Errorf("get frame %q: %w", frameID, ErrNotFound)
	}
	return rec, nil
}

// Count returns the number of frames indexed.
func (s *Store) Count(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = getU64(tx.Bucket(bucketMeta), keyFrames)
		return nil
	})
	return n, dbErr(err)
}

// Stats returns the store's counters and, per camera (all cameras when
// camera is empty), its counts and oldest/newest capture times. It reads
// counters and two cursor positions per camera; no scan.
func (s *Store) Stats(ctx context.Context) (Stats, error) { return s.StatsOf(ctx, "") }

// StatsOf is Stats restricted to one camera ("" for all).
func (s *Store) StatsOf(ctx context.Context, camera string) (Stats, error) {
	if err := s.check(ctx); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if camera != "" {
		if err := validateName("camera id", camera); err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	st := Stats{Backend: s.objects.Kind()}
	err := s.db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		st.Frames = getU64(mb, keyFrames)
		st.Bytes = getU64(mb, keyBytes)
		st.Events = getU64(mb, keyEvents)
		st.Expired = getU64(mb, keyExpired)
		st.IndexFileBytes = tx.Size()
		byTime := tx.Bucket(bucketByTime).Cursor()
		return tx.Bucket(bucketCameras).ForEach(func(k, v []byte) error {
			if camera != "" && string(k) != camera {
				return nil
			}
			var c cameraRecord
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("%w: camera counters of %q: %v", ErrCorrupt, k, err)
			}
			cs := CameraStats{CameraID: string(k), Frames: c.Frames, Bytes: c.Bytes, Events: c.Events}
			prefix := cameraPrefix(string(k))
			if fk, _ := byTime.Seek(prefix); fk != nil && bytes.HasPrefix(fk, prefix) {
				if t, _, ok := splitTimeKey(fk[len(prefix):]); ok {
					cs.Oldest = t
				}
			}
			if lk := lastWithPrefix(byTime, prefix); lk != nil {
				if t, _, ok := splitTimeKey(lk[len(prefix):]); ok {
					cs.Newest = t
				}
			}
			st.Cameras = append(st.Cameras, cs)
			return nil
		})
	})
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", dbErr(err))
	}
	return st, nil
}

// lastWithPrefix returns the last key of c starting with prefix, or nil.
func lastWithPrefix(c *bolt.Cursor, prefix []byte) []byte {
	// The smallest key after every key with prefix: prefix with its last
	// byte incremented (prefixes here end in 0x00, so no carry).
	end := append(append([]byte(nil), prefix[:len(prefix)-1]...), prefix[len(prefix)-1]+1)
	k, _ := c.Seek(end)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k != nil && bytes.HasPrefix(k, prefix) {
		return k
	}
	return nil
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

// addU64 adds delta (which may be negative) to a counter, never below 0.
func addU64(b *bolt.Bucket, key []byte, delta int64) error {
	v := int64(getU64(b, key)) + delta
	return b.Put(key, u64(uint64(max(v, 0))))
}
