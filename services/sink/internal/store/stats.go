package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
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
