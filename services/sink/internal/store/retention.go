package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RetentionPolicy bounds what one camera keeps. Zero values are unbounded.
type RetentionPolicy struct {
	MaxAge   time.Duration // frames captured longer ago than this go
	MaxBytes int64         // oldest frames go while the camera holds more JPEG bytes
}

// Retention holds the default policy and per-camera overrides.
type Retention struct {
	Default RetentionPolicy
	Cameras map[string]RetentionPolicy
}

// For returns the policy of camera.
func (r Retention) For(camera string) RetentionPolicy {
	if p, ok := r.Cameras[camera]; ok {
		return p
	}
	return r.Default
}

// Enabled reports whether any policy bounds anything.
func (r Retention) Enabled() bool {
	if r.Default != (RetentionPolicy{}) {
		return true
	}
	for _, p := range r.Cameras {
		if p != (RetentionPolicy{}) {
			return true
		}
	}
	return false
}

// RetentionResult counts what ApplyRetention deleted.
type RetentionResult struct {
	Frames       int64
	Bytes        int64 // JPEG bytes
	ObjectErrors int   // objects whose deletion failed (left unindexed; Verify reports them)
}

const retentionBatch = 256

// ApplyRetention deletes, per camera and oldest first, the frames its
// policy no longer allows at time now. The index entries go first (a
// tombstone keeps a replay of a deleted frame from storing it again), then
// the objects; a failed object deletion is counted and logged, never
// resurrects the frame.
func (s *Store) ApplyRetention(ctx context.Context, r Retention, now time.Time) (RetentionResult, error) {
	var res RetentionResult
	if err := s.check(ctx); err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()
	st, err := s.Stats(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	for _, cam := range st.Cameras {
		pol := r.For(cam.CameraID)
		if pol == (RetentionPolicy{}) {
			continue
		}
		for {
			ids, err := s.expiredFrames(cam.CameraID, pol, now)
			if err != nil {
				return res, fmt.Errorf("retention of camera %s: %w", cam.CameraID, err)
			}
			if len(ids) == 0 {
				break
			}
			keys, frames, n, err := s.deleteFrames(ids, now)
			if err != nil {
				return res, fmt.Errorf("retention of camera %s: %w", cam.CameraID, err)
			}
			res.Frames += frames
			res.Bytes += n
			for _, k := range keys {
				if err := s.objects.Delete(ctx, k); err != nil {
					res.ObjectErrors++
					s.log.Warn("retention: cannot delete object; it stays unindexed", "key", k, "err", err)
				}
			}
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
		}
	}
	if res.Frames > 0 {
		s.log.Info("retention deleted frames", "frames", res.Frames, "bytes", res.Bytes)
	}
	return res, nil
}

// expiredFrames returns up to retentionBatch of camera's oldest frames
// that pol does not allow.
func (s *Store) expiredFrames(camera string, pol RetentionPolicy, now time.Time) ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		var c cameraRecord
		if v := tx.Bucket(bucketCameras).Get([]byte(camera)); v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("%w: camera counters of %q: %v", ErrCorrupt, camera, err)
			}
		}
		bytesLeft := c.Bytes
		prefix := cameraPrefix(camera)
		frames := tx.Bucket(bucketFrames)
		cur := tx.Bucket(bucketByTime).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(ids) < retentionBatch; k, _ = cur.Next() {
			t, id, ok := splitTimeKey(k[len(prefix):])
			if !ok {
				return fmt.Errorf("%w: malformed by_time key %x", ErrCorrupt, k)
			}
			tooOld := pol.MaxAge > 0 && now.Sub(t) > pol.MaxAge
			tooBig := pol.MaxBytes > 0 && bytesLeft > pol.MaxBytes
			if !tooOld && !tooBig {
				break
			}
			rec, err := decodeRecord(id, frames.Get([]byte(id)))
			if err != nil {
				return err
			}
			bytesLeft -= rec.SizeBytes
			ids = append(ids, id)
		}
		return nil
	})
	return ids, dbErr(err)
}

// deleteFrames removes frames from the index in one transaction, leaving
// tombstones, and returns the object keys to delete.
func (s *Store) deleteFrames(ids []string, now time.Time) (keys []string, frames, n int64, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		keys, frames, n = nil, 0, 0
		fb, mb := tx.Bucket(bucketFrames), tx.Bucket(bucketMeta)
		when := encodeTime(now)
		for _, id := range ids {
			v := fb.Get([]byte(id))
			if v == nil {
				continue
			}
			rec, err := decodeRecord(id, v)
			if err != nil {
				return err
			}
			if err := fb.Delete([]byte(id)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketByTime).Delete(timeKey(cameraPrefix(rec.CameraID), rec.CaptureTime, id)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketByTimeAll).Delete(timeKey(nil, rec.CaptureTime, id)); err != nil {
				return err
			}
			if rec.EventID != "" {
				if err := tx.Bucket(bucketByEvent).Delete(timeKey(cameraPrefix(rec.EventID), rec.CaptureTime, id)); err != nil {
					return err
				}
				if err := removeFromEvent(tx, rec); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketDeleted).Put([]byte(id), when[:]); err != nil {
				return err
			}
			if err := updateCamera(tx, rec.CameraID, func(c *cameraRecord) { c.Frames--; c.Bytes -= rec.SizeBytes }); err != nil {
				return err
			}
			for _, kv := range []struct {
				key   []byte
				delta int64
			}{{keyFrames, -1}, {keyBytes, -rec.SizeBytes}, {keyExpired, 1}} {
				if err := addU64(mb, kv.key, kv.delta); err != nil {
					return err
				}
			}
			frames++
			n += rec.SizeBytes
			keys = append(keys, rec.Path)
			if rec.ThumbPath != "" {
				keys = append(keys, rec.ThumbPath)
			}
		}
		return nil
	})
	return keys, frames, n, dbErr(err)
}
