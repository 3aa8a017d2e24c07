package store

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
)

// VerifyReport is the result of Verify. Paths are object keys
// ('/'-separated, relative to the backend's root).
type VerifyReport struct {
	IndexedFrames int // entries in the frames bucket
	FilesScanned  int // objects under frames/ and thumbs/
	MetaScanned   int // objects under meta/ (what Rebuild reads)

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
	chk, err := s.index.Check(ctx)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: read index: %w", err)
	}
	rep.IndexedFrames = chk.Frames
	rep.IndexErrors = chk.Problems
	for _, e := range chk.Entries {
		id := e.Meta.FrameID
		indexed[e.Path] = struct{}{}
		entries = append(entries, entry{id, e.Path, e.Meta.SizeBytes})
		if e.ThumbPath != "" {
			indexed[e.ThumbPath] = struct{}{}
			entries = append(entries, entry{id, e.ThumbPath, e.Meta.ThumbnailBytes})
		}
	}

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
	err = s.objects.List(ctx, metaDir+"/", func(o ObjectInfo) error {
		rep.MetaScanned++
		switch {
		case strings.HasPrefix(path.Base(o.Key), tempPrefix):
			rep.TempFiles = append(rep.TempFiles, o.Key)
		case !isMetaPath(o.Key):
			rep.StrayFiles = append(rep.StrayFiles, o.Key)
		}
		return nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify: %w", err)
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
	// An object listed after the index was read may have been indexed
	// meanwhile: ask again.
	for _, rel := range candidates {
		id := strings.TrimSuffix(path.Base(rel), ".jpg")
		e, found, _, err := s.index.Lookup(ctx, id)
		if err != nil {
			return VerifyReport{}, fmt.Errorf("verify: re-check index: %w", err)
		}
		if !found || e.Path != rel {
			rep.UnindexedFiles = append(rep.UnindexedFiles, rel)
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

// isMetaPath reports a well-formed meta/ key.
func isMetaPath(key string) bool {
	jpg, ok := strings.CutSuffix(key, ".json")
	if !ok || !strings.HasPrefix(jpg, metaDir+"/") {
		return false
	}
	return isObjectPath(framesDir, framesDir+strings.TrimPrefix(jpg, metaDir)+".jpg")
}
