package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Count reads the frame counter.
func (b *boltIndex) Count(ctx context.Context) (uint64, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var n uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		n = getU64(tx.Bucket(bucketMeta), keyFrames)
		return nil
	})
	return n, dbErr(err)
}

// Stats reads the counters and two cursor positions per camera; no scan.
func (b *boltIndex) Stats(ctx context.Context, camera string) (Stats, error) {
	if err := b.check(ctx); err != nil {
		return Stats{}, err
	}
	var st Stats
	err := b.db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		st.Frames = getU64(mb, keyFrames)
		st.Bytes = getU64(mb, keyBytes)
		st.Events = getU64(mb, keyEvents)
		st.Expired = getU64(mb, keyExpired)
		st.IndexBytes = tx.Size()
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
	return st, dbErr(err)
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
