package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check reads the frames bucket and checks that both time buckets hold
// exactly its frames and that the counters match it.
func (b *boltIndex) Check(ctx context.Context) (IndexCheck, error) {
	if err := b.check(ctx); err != nil {
		return IndexCheck{}, err
	}
	var out IndexCheck
	problem := func(format string, args ...any) { out.Problems = append(out.Problems, fmt.Sprintf(format, args...)) }
	err := b.db.View(func(tx *bolt.Tx) error {
		out = IndexCheck{}
		byTime, byAll := tx.Bucket(bucketByTime), tx.Bucket(bucketByTimeAll)
		var bytesSum uint64
		err := tx.Bucket(bucketFrames).ForEach(func(k, v []byte) error {
			if out.Frames%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			out.Frames++
			id := string(k)
			rec, err := decodeRecord(id, v)
			if err != nil {
				out.Problems = append(out.Problems, err.Error())
				return nil
			}
			bytesSum += uint64(rec.SizeBytes)
			out.Entries = append(out.Entries, rec.entry())
			if byTime.Get(timeKey(cameraPrefix(rec.CameraID), rec.CaptureTime, id)) == nil {
				problem("frame %q has no by_time key", id)
			}
			if byAll.Get(timeKey(nil, rec.CaptureTime, id)) == nil {
				problem("frame %q has no by_time_all key", id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		frames := tx.Bucket(bucketFrames)
		for _, tb := range []struct {
			name   []byte
			bucket *bolt.Bucket
			camera bool
		}{{bucketByTime, byTime, true}, {bucketByTimeAll, byAll, false}} {
			n := 0
			err := tb.bucket.ForEach(func(k, _ []byte) error {
				n++
				rest := k
				if tb.camera {
					i := bytes.IndexByte(k, 0)
					if i < 0 {
						rest = nil
					} else {
						rest = k[i+1:]
					}
				}
				_, id, ok := splitTimeKey(rest)
				if !ok {
					problem("malformed %s key %x", tb.name, k)
				} else if frames.Get([]byte(id)) == nil {
					problem("%s key of frame %q has no frames entry", tb.name, id)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n != out.Frames {
				problem("%s has %d keys, frames has %d", tb.name, n, out.Frames)
			}
		}
		mb := tx.Bucket(bucketMeta)
		if c := getU64(mb, keyFrames); c != uint64(out.Frames) {
			problem("frame counter is %d, frames has %d", c, out.Frames)
		}
		if c := getU64(mb, keyBytes); c != bytesSum {
			problem("byte counter is %d, records sum to %d", c, bytesSum)
		}
		return nil
	})
	return out, dbErr(err)
}
