package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

const (
	indexFile = "index.db"
	schemaV1  = 1
	// lockTimeout bounds OpenBolt's wait for another holder of index.db.
	lockTimeout = 5 * time.Second
)

// boltIndex is the embedded Index: one bbolt file on the sink's disk (see
// the package comment for its buckets). One process at a time holds it.
type boltIndex struct {
	db     *bolt.DB
	dir    string
	closed atomic.Bool
}

// OpenBolt opens (creating if needed) the bbolt index in dir/index.db. It
// waits for another holder of the file at most 5 s, or until ctx's
// deadline.
func OpenBolt(ctx context.Context, dir string) (Index, error) {
	return openBolt(ctx, dir)
}

func openBolt(ctx context.Context, indexDir string) (*boltIndex, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open index %s: %w", indexDir, err)
	}
	if indexDir == "" {
		return nil, errors.New("open index: empty directory")
	}
	abs, err := filepath.Abs(indexDir)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", indexDir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("open index: create %s: %w", abs, err)
	}
	dbPath := filepath.Join(abs, indexFile)
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
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open index %s: %w", dbPath, err)
	}
	return &boltIndex{db: db, dir: abs}, nil
}

func (b *boltIndex) Describe() string { return "bbolt " + b.dir }

// Close closes the file; it waits for running transactions.
func (b *boltIndex) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close index %s: %w", b.db.Path(), err)
	}
	return nil
}

func (b *boltIndex) check(ctx context.Context) error {
	if b.closed.Load() {
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

func (b *boltIndex) Lookup(ctx context.Context, id string) (Entry, bool, bool, error) {
	if err := b.check(ctx); err != nil {
		return Entry{}, false, false, err
	}
	rec, found, err := b.lookup(id)
	if err != nil || found {
		return rec.entry(), found, false, err
	}
	deleted, err := b.wasDeleted(id)
	return Entry{}, false, deleted, err
}

// Insert adds e in one bbolt transaction (see Index.Insert).
func (b *boltIndex) Insert(ctx context.Context, e Entry) (bool, error) {
	ins, err := b.InsertBatch(ctx, []Entry{e})
	if err != nil {
		return false, err
	}
	return ins[0], nil
}

// InsertBatch adds es in one bbolt transaction.
func (b *boltIndex) InsertBatch(ctx context.Context, es []Entry) ([]bool, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	recs := make([]record, len(es))
	raws := make([][]byte, len(es))
	for i, e := range es {
		recs[i] = recordFromEntry(e)
		raw, err := json.Marshal(recs[i])
		if err != nil {
			return nil, fmt.Errorf("encode record of frame %q: %w", recs[i].FrameID, err)
		}
		raws[i] = raw
	}
	inserted := make([]bool, len(es))
	err := b.db.Update(func(tx *bolt.Tx) error {
		for i := range es {
			ok, err := insertTx(tx, recs[i], raws[i])
			if err != nil {
				return err
			}
			inserted[i] = ok
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(err)
	}
	return inserted, nil
}

// insertTx indexes one record in tx, unless its id is indexed or deleted.
func insertTx(tx *bolt.Tx, rec record, recJSON []byte) (bool, error) {
	id, meta := rec.FrameID, rec.meta()
	if tx.Bucket(bucketDeleted).Get([]byte(id)) != nil {
		return false, nil
	}
	fb := tx.Bucket(bucketFrames)
	if fb.Get([]byte(id)) != nil {
		return false, nil
	}
	if err := fb.Put([]byte(id), recJSON); err != nil {
		return false, err
	}
	if err := tx.Bucket(bucketByTime).Put(timeKey(cameraPrefix(meta.CameraID), meta.CaptureTime, id), nil); err != nil {
		return false, err
	}
	if err := tx.Bucket(bucketByTimeAll).Put(timeKey(nil, meta.CaptureTime, id), nil); err != nil {
		return false, err
	}
	mb := tx.Bucket(bucketMeta)
	if err := addU64(mb, keyFrames, 1); err != nil {
		return false, err
	}
	if err := addU64(mb, keyBytes, meta.SizeBytes); err != nil {
		return false, err
	}
	newEvent := false
	if meta.EventID != "" {
		if err := tx.Bucket(bucketByEvent).Put(timeKey(cameraPrefix(meta.EventID), meta.CaptureTime, id), nil); err != nil {
			return false, err
		}
		var err error
		if newEvent, err = addToEvent(tx, rec); err != nil {
			return false, err
		}
	}
	err := updateCamera(tx, meta.CameraID, func(c *cameraRecord) {
		c.Frames++
		c.Bytes += meta.SizeBytes
		if newEvent {
			c.Events++
		}
	})
	return err == nil, err
}
