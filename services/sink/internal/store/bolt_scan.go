package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ListFrames scans by_time (one camera), by_event (one event) or
// by_time_all.
func (b *boltIndex) ListFrames(ctx context.Context, q Query) ([]FrameMeta, string, error) {
	if err := b.check(ctx); err != nil {
		return nil, "", err
	}
	sc := scan{bucket: bucketByTimeAll, kind: tokenAll, start: q.Start, end: q.End, limit: q.Limit, token: q.PageToken}
	if q.CameraID != "" {
		sc.prefix, sc.bucket, sc.kind = cameraPrefix(q.CameraID), bucketByTime, tokenCamera
	}
	if q.EventID != "" {
		sc.prefix, sc.bucket, sc.kind = cameraPrefix(q.EventID), bucketByEvent, tokenEvent
	}
	var out []FrameMeta
	next, err := b.scan(ctx, sc, func(tx *bolt.Tx, id string) (bool, error) {
		v := tx.Bucket(bucketFrames).Get([]byte(id))
		if v == nil {
			return false, fmt.Errorf("%w: %s key for frame %q has no frames entry", ErrCorrupt, sc.bucket, id)
		}
		rec, err := decodeRecord(id, v)
		if err != nil {
			return false, err
		}
		if rec.MotionScore < q.MinScore || (q.CameraID != "" && rec.CameraID != q.CameraID) {
			return false, nil
		}
		out = append(out, rec.meta())
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// scan describes a cursor scan over a time-keyed bucket.
type scan struct {
	bucket     []byte
	prefix     []byte // key prefix ("" for the *_all buckets)
	kind       byte   // page token kind
	start, end time.Time
	limit      int
	token      string
	reverse    bool // descending key order
}

// scan visits the ids in sc's range after its page token, in key order (in
// descending key order if sc.reverse), until visit has accepted limit of
// them. visit reports whether it kept the id. It returns the next page
// token. A reverse scan must use a token kind of its own, so that a token
// of one order is refused by the other.
func (b *boltIndex) scan(ctx context.Context, sc scan, visit func(tx *bolt.Tx, id string) (bool, error)) (string, error) {
	if !sc.start.IsZero() && !sc.end.IsZero() && sc.end.Before(sc.start) {
		return "", fmt.Errorf("%w: end %s is before start %s", ErrInvalidQuery, sc.end, sc.start)
	}
	limit := sc.limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	prefix := sc.prefix

	var after []byte // last key of the previous page (either order)
	if sc.token != "" {
		k, err := decodePageToken(sc.token, sc.kind, prefix)
		if err != nil {
			return "", err
		}
		after = k
	}
	// Lower bound: first key with time >= start.
	lower := prefix
	if !sc.start.IsZero() {
		switch {
		case sc.start.After(maxTime):
			return "", nil
		case !sc.start.Before(minTime):
			tb := encodeTime(sc.start)
			lower = append(append([]byte(nil), prefix...), tb[:]...)
		}
	}
	// Upper bound (exclusive): keys >= upper have time >= end. nil: only
	// the prefix bounds the scan.
	var upper []byte
	if !sc.end.IsZero() {
		switch {
		case !sc.end.After(minTime):
			return "", nil
		case !sc.end.After(maxTime):
			tb := encodeTime(sc.end)
			upper = append(append([]byte(nil), prefix...), tb[:]...)
		}
	}
	inRange := func(k []byte) bool {
		if !bytes.HasPrefix(k, prefix) || bytes.Compare(k, lower) < 0 {
			return false
		}
		return upper == nil || bytes.Compare(k, upper) < 0
	}
	var (
		lastKey []byte
		more    bool
		kept    int
	)
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(sc.bucket).Cursor()
		var k []byte
		step := c.Next
		switch {
		case sc.reverse:
			step = c.Prev
			// Start at the last key below the tighter of the page token,
			// the upper bound and the end of the prefix.
			end := upper
			if end == nil {
				end = prefixEnd(prefix)
			}
			if after != nil && (end == nil || bytes.Compare(after, end) < 0) {
				end = after
			}
			k = lastBelow(c, end)
		case after != nil && bytes.Compare(after, lower) >= 0:
			k, _ = c.Seek(after)
			if bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		default:
			k, _ = c.Seek(lower)
		}
		for n := 0; k != nil && inRange(k); k, _ = step() {
			if kept == limit {
				more = true
				break
			}
			if n++; n%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			_, id, ok := splitTimeKey(k[len(prefix):])
			if !ok {
				return fmt.Errorf("%w: malformed %s key %x", ErrCorrupt, sc.bucket, k)
			}
			ok, err := visit(tx, id)
			if err != nil {
				return err
			}
			if ok {
				kept++
			}
			lastKey = append(lastKey[:0], k...)
		}
		return nil
	})
	if err != nil {
		return "", dbErr(err)
	}
	if more {
		return encodePageToken(sc.kind, lastKey), nil
	}
	return "", nil
}

// lastBelow positions c at the last key < end (the bucket's last key if end
// is nil) and returns it, or nil if there is none.
func lastBelow(c *bolt.Cursor, end []byte) []byte {
	if end == nil {
		k, _ := c.Last()
		return k
	}
	if k, _ := c.Seek(end); k == nil {
		k, _ = c.Last() // every key is < end
		return k
	}
	k, _ := c.Prev()
	return k
}

// prefixEnd returns the smallest key greater than every key with prefix,
// or nil if there is none (an empty prefix or one of only 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
