package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// VerifyReport is the result of Verify. Paths are relative to the store
// dir and '/'-separated.
type VerifyReport struct {
	IndexedFrames int // entries in the frames bucket
	FilesScanned  int // regular files under frames/

	// UnindexedFiles are frame files without an index entry (a crash came
	// between writing the file and committing the index). A Put of the
	// frame indexes them.
	UnindexedFiles []string
	// MissingFiles are ids of indexed frames whose file is absent.
	MissingFiles []string
	// SizeMismatches are ids of indexed frames whose file size differs
	// from the recorded size.
	SizeMismatches []string
	// IndexErrors describe inconsistencies inside the index (undecodable
	// records, missing or dangling time-index keys, counter drift).
	IndexErrors []string
	// TempFiles are leftovers of interrupted atomic writes; safe to delete.
	TempFiles []string
	// StrayFiles are other files under frames/ that the store did not write.
	StrayFiles []string
}

// OK reports whether Verify found nothing to report.
func (r VerifyReport) OK() bool {
	return len(r.UnindexedFiles) == 0 && len(r.MissingFiles) == 0 && len(r.SizeMismatches) == 0 &&
		len(r.IndexErrors) == 0 && len(r.TempFiles) == 0 && len(r.StrayFiles) == 0
}

// Verify cross-checks the index and the frame files: it reports files
// without index entries, index entries without files (or of the wrong size),
// leftover temporary files, and inconsistencies inside the index. It reads
// every index entry and walks frames/, so its cost grows with the store; it
// does not hash file contents and repairs nothing. It may run concurrently
// with Put: a file whose index entry is committed while Verify runs is not
// reported.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	if err := s.check(ctx); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}

	// 1. Index snapshot. Files are written before their index commit, so
	// every entry of this snapshot must have its file now.
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
			if byTime.Get(timeKey(cameraPrefix(rec.CameraID), rec.CaptureTime, id)) == nil {
				rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("frame %q has no by_time key", id))
			}
			if byAll.Get(timeKey(nil, rec.CaptureTime, id)) == nil {
				rep.IndexErrors = append(rep.IndexErrors, fmt.Sprintf("frame %q has no by_time_all key", id))
			}
			fi, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(rec.Path)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				rep.MissingFiles = append(rep.MissingFiles, id)
			case err != nil:
				return fmt.Errorf("stat file of frame %q (%s): %w", id, rec.Path, err)
			case !fi.Mode().IsRegular() || fi.Size() != rec.SizeBytes:
				rep.SizeMismatches = append(rep.SizeMismatches, id)
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

	// 2. Walk the files. A frame file is frames/<site>/<camera>/<day>/<id>.jpg.
	var candidates []string
	err = filepath.WalkDir(s.framesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			return ctx.Err()
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		rep.FilesScanned++
		name := d.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			rep.TempFiles = append(rep.TempFiles, rel)
		case !d.Type().IsRegular() || !isFramePath(rel):
			rep.StrayFiles = append(rep.StrayFiles, rel)
		default:
			if _, ok := indexed[rel]; !ok {
				candidates = append(candidates, rel)
			}
		}
		return nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
	}

	// 3. Files not in the snapshot may have been indexed since; re-check.
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
	if rep.OK() {
		s.log.Info("frame store verified", "frames", rep.IndexedFrames, "files", rep.FilesScanned)
	} else {
		s.log.Warn("frame store verification found problems", "frames", rep.IndexedFrames, "files", rep.FilesScanned,
			"unindexed_files", len(rep.UnindexedFiles), "missing_files", len(rep.MissingFiles),
			"size_mismatches", len(rep.SizeMismatches), "index_errors", len(rep.IndexErrors),
			"temp_files", len(rep.TempFiles), "stray_files", len(rep.StrayFiles))
	}
	return rep, nil
}

// isFramePath reports whether rel ('/'-separated, relative to the store dir)
// has the shape frames/<site>/<camera>/<YYYY-MM-DD>/<id>.jpg.
func isFramePath(rel string) bool {
	parts := strings.Split(rel, "/")
	if len(parts) != 5 || parts[0] != framesDir {
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
