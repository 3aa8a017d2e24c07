package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// expiredFrames returns up to retentionBatch of camera's oldest frames
// that pol does not allow.
func (b *boltIndex) Expired(ctx context.Context, camera string, pol RetentionPolicy, now time.Time, limit int) ([]string, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	var ids []string
	err := b.db.View(func(tx *bolt.Tx) error {
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
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(ids) < limit; k, _ = cur.Next() {
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
func (b *boltIndex) Delete(ctx context.Context, ids []string, now time.Time) ([]Entry, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	var out []Entry
	err := b.db.Update(func(tx *bolt.Tx) error {
		out = out[:0]
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
			out = append(out, rec.entry())
		}
		return nil
	})
	return out, dbErr(err)
}
