package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// List returns frames matching q in (capture time, frame id) order, at most
// q.Limit of them, and a token for the next page ("" when there is none).
// Start is inclusive, End exclusive; zero times are unbounded. A page token
// is only valid with the same CameraID it was issued for; a malformed one
// gives an error wrapping ErrInvalidPageToken. Pages are consistent cursors:
// frames stored after a page was returned appear on later pages only if
// they sort after that page's last frame.
func (s *Store) List(ctx context.Context, q Query) ([]FrameMeta, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	var prefix []byte
	bucket, kind := bucketByTimeAll, tokenAll
	if q.CameraID != "" {
		if err := validateName("camera id", q.CameraID); err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		prefix = cameraPrefix(q.CameraID)
		bucket, kind = bucketByTime, tokenCamera
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return nil, "", fmt.Errorf("list: %w: end %s is before start %s", ErrInvalidQuery, q.End, q.Start)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)

	var after []byte // last key of the previous page
	if q.PageToken != "" {
		k, err := decodePageToken(q.PageToken, prefix)
		if err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		after = k
	}

	// Lower bound: first key with time >= Start.
	lower := prefix
	if !q.Start.IsZero() {
		switch {
		case q.Start.After(maxTime):
			return nil, "", nil
		case !q.Start.Before(minTime):
			tb := encodeTime(q.Start)
			lower = append(append([]byte(nil), prefix...), tb[:]...)
		}
	}
	// Upper bound (exclusive): keys >= upper have time >= End. nil: only
	// the prefix bounds the scan.
	var upper []byte
	if !q.End.IsZero() {
		switch {
		case !q.End.After(minTime):
			return nil, "", nil
		case !q.End.After(maxTime):
			tb := encodeTime(q.End)
			upper = append(append([]byte(nil), prefix...), tb[:]...)
		}
	}
	inRange := func(k []byte) bool {
		if !bytes.HasPrefix(k, prefix) {
			return false
		}
		return upper == nil || bytes.Compare(k, upper) < 0
	}

	var (
		out     []FrameMeta
		lastKey []byte
		more    bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		frames := tx.Bucket(bucketFrames)
		c := tx.Bucket(bucket).Cursor()
		var k []byte
		if after != nil && bytes.Compare(after, lower) >= 0 {
			k, _ = c.Seek(after)
			if bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		} else {
			k, _ = c.Seek(lower)
		}
		for ; k != nil && inRange(k); k, _ = c.Next() {
			if len(out) == limit {
				more = true
				break
			}
			if len(out)%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			_, id, ok := splitTimeKey(k[len(prefix):])
			if !ok {
				return fmt.Errorf("%w: malformed %s key %x", ErrCorrupt, bucket, k)
			}
			v := frames.Get([]byte(id))
			if v == nil {
				return fmt.Errorf("%w: %s key for frame %q has no frames entry", ErrCorrupt, bucket, id)
			}
			rec, err := decodeRecord(id, v)
			if err != nil {
				return err
			}
			out = append(out, rec.meta())
			lastKey = append(lastKey[:0], k...)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list camera=%q start=%s end=%s: %w", q.CameraID, q.Start, q.End, dbErr(err))
	}
	next := ""
	if more {
		next = encodePageToken(kind, lastKey)
	}
	return out, next, nil
}
