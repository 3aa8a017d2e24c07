package store

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// VerifyReport is the result of Verify. Paths are object keys
// ('/'-separated, relative to the backend's root).
type VerifyReport struct {
	IndexedFrames int // entries in the frames bucket
	FilesScanned  int // objects under frames/ and thumbs/

	// UnindexedFiles are frame objects without an index entry (a crash came
	// between writing the object and committing the index, or retention
	// could not delete it). A Put of the frame indexes them.
	UnindexedFiles []string
	// MissingFiles are ids of indexed frames whose object is absent.
	MissingFiles []string
	// SizeMismatches are ids of indexed frames whose object size differs
	// from the recorded size.
	SizeMismatches []string
	// IndexErrors describe inconsistencies inside the index (undecodable
	// records, missing or dangling time-index keys, counter drift).
	IndexErrors []string
	// TempFiles are leftovers of interrupted atomic writes; safe to delete.
	TempFiles []string
	// StrayFiles are other objects under frames/ or thumbs/ that the store
	// did not write.
	StrayFiles []string
}

// OK reports whether Verify found nothing to report.
func (r VerifyReport) OK() bool {
	return len(r.UnindexedFiles) == 0 && len(r.MissingFiles) == 0 && len(r.SizeMismatches) == 0 &&
		len(r.IndexErrors) == 0 && len(r.TempFiles) == 0 && len(r.StrayFiles) == 0
}

// Verify cross-checks the index and the objects: it reports objects
// without index entries, index entries without objects (or of the wrong
// size), leftover temporary files, and inconsistencies inside the index.
// It reads every index entry and lists the objects, so its cost grows with
// the store; it does not hash contents and repairs nothing. It may run
// concurrently with Put: an object whose index entry is committed while
// Verify runs is not reported.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if err := s.check(ctx); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}

	// 1. Index snapshot. Objects are written before their index commit, so
	// every entry of this snapshot had its object before step 2 began.
	type entry struct {
		id   string
		path string
		size int64
	}
	var entries []entry
	indexed := make(map[string]struct{})
	err := s.db.View(func(tx *bolt.Tx) error {
		byTime, byAll := tx.Bucket(bucketByTime), tx.Bucket(bucketByTimeAll)
		var bytesSum uint64
		err := tx.Bucket(bucketFrames).ForEach(func(k, v []byte) error {
			if rep.IndexedFrames%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rep.IndexedFrames++
			id := string(k)
			rec, err := decodeRecord(id, v)
			if err != nil {
				rep.IndexErrors = append(rep.IndexErrors, err.Error())
				return nil
			}
			bytesSum += uint64(rec.SizeBytes)
			indexed[rec.Path] = struct{}{}
			entries = append(entries, entry{id, rec.Path, rec.SizeBytes})
			if rec.ThumbPath != "" {
				indexed[rec.ThumbPath] = struct{}{}
				entries = append(entries, entry{id, rec.ThumbPath, rec.ThumbSize})
			}
			if byTime.Get(timeKey(cameraPrefix(rec.CameraID), rec.CaptureTime, id)) == nil {
				rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("frame %q has no by_time key", id))
			}
			if byAll.Get(timeKey(nil, rec.CaptureTime, id)) == nil {
				rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("frame %q has no by_time_all key", id))
			}
			return nil
		})
		if err != nil {
			return err
		}
		frames := tx.Bucket(bucketFrames)
		for _, b := range []struct {
			name   []byte
			bucket *bolt.Bucket
			camera bool
		}{{bucketByTime, byTime, true}, {bucketByTimeAll, byAll, false}} {
			n := 0
			err := b.bucket.ForEach(func(k, _ []byte) error {
				n++
				rest := k
				if b.camera {
					i := bytes.IndexByte(k, 0)
					if i < 0 {
						rest = nil
					} else {
						rest = k[i+1:]
					}
				}
				_, id, ok := splitTimeKey(rest)
				if !ok {
					rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("malformed %s key %x", b.name, k))
				} else if frames.Get([]byte(id)) == nil {
					rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("%s key of frame %q has no frames entry", b.name, id))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n != rep.IndexedFrames {
				rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("%s has %d keys, frames has %d", b.name, n, rep.IndexedFrames))
			}
		}
		mb := tx.Bucket(bucketMeta)
		if c := getU64(mb, keyFrames); c != uint64(rep.IndexedFrames) {
			rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("frame counter is %d, frames has %d", c, rep.IndexedFrames))
		}
		if c := getU64(mb, keyBytes); c != bytesSum {
			rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("byte counter is %d, records sum to %d", c, bytesSum))
		}
		return nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read index: %w", dbErr(err))
	}

	// 2. List the objects.
	sizes := map[string]int64{}
	var candidates []string
	for _, top := range []string{framesDir, thumbsDir} {
		err = s.objects.List(ctx, top+"/", func(o ObjectInfo) error {
			rep.FilesScanned++
			sizes[o.Key] = o.Size
			switch {
			case strings.HasPrefix(path.Base(o.Key), tempPrefix):
				rep.TempFiles = append(rep.TempFiles, o.Key)
			case o.Size < 0 || !isObjectPath(top, o.Key):
				rep.StrayFiles = append(rep.StrayFiles, o.Key)
			default:
				if _, ok := indexed[o.Key]; !ok && top == framesDir {
					candidates = append(candidates, o.Key)
				}
			}
			return nil
		})
		if err != nil {
			return VerifyReport{}, fmt.Errorf("verify: %w", err)
		}
	}
	for _, e := range entries {
		size, ok := sizes[e.path]
		switch {
		case !ok:
			rep.MissingFiles = append(rep.MissingFiles, e.id)
		case size != e.size:
			rep.SizeMismatches = append(rep.SizeMismatches, e.id)
		}
	}

	// 3. Objects not in the snapshot may have been indexed since; re-check.
	if len(candidates) > 0 {
		err = s.db.View(func(tx *bolt.Tx) error {
			fb := tx.Bucket(bucketFrames)
			for _, rel := range candidates {
				id := strings.TrimSuffix(path.Base(rel), ".jpg")
				if v := fb.Get([]byte(id)); v != nil {
					if rec, err := decodeRecord(id, v); err == nil && rec.Path == rel {
						continue
					}
				}
				rep.UnindexedFiles = append(rep.UnindexedFiles, rel)
			}
			return nil
		})
		if err != nil {
			return VerifyReport{}, fmt.Errorf("verify: re-check index: %w", dbErr(err))
		}
	}

	for _, l := range [][]string{rep.UnindexedFiles, rep.MissingFiles, rep.SizeMismatches, rep.TempFiles, rep.StrayFiles} {
		slices.Sort(l)
	}
	rep.MissingFiles = slices.Compact(rep.MissingFiles)
	rep.SizeMismatches = slices.Compact(rep.SizeMismatches)
	if rep.OK() {
		s.log.Info("frame store verified", "frames", rep.IndexedFrames, "objects", rep.FilesScanned)
	} else {
		s.log.Warn("frame store verification found problems", "frames", rep.IndexedFrames, "objects", rep.FilesScanned,
			"unindexed_files", len(rep.UnindexedFiles), "missing_files", len(rep.MissingFiles),
			"size_mismatches", len(rep.SizeMismatches), "index_errors", len(rep.IndexErrors),
			"temp_files", len(rep.TempFiles), "stray_files", len(rep.StrayFiles))
	}
	return rep, nil
}

// isObjectPath reports whether key has the shape
// <top>/<site>/<camera>/<YYYY-MM-DD>/<id>.jpg.
func isObjectPath(top, key string) bool {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || parts[0] != top {
		return false
	}
	if validateName("site", parts[1]) != nil || validateName("camera id", parts[2]) != nil {
		return false
	}
	if len(parts[3]) != 10 || parts[3][4] != '-' || parts[3][7] != '-' {
		return false
	}
	id, ok := strings.CutSuffix(parts[4], ".jpg")
	return ok && ValidateFrameID(id) == nil
}
