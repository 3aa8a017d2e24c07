package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// RebuildReport is what Rebuild did.
type RebuildReport struct {
	MetaObjects    int // meta/ objects read
	Indexed        int // frames it indexed
	AlreadyIndexed int // frames the index held already
	// NoPicture are meta objects whose JPEG is missing or of another size
	// (a retention delete or a write cut short): not indexed.
	NoPicture []string
	// Unreadable are meta objects that cannot be decoded: not indexed.
	Unreadable []string
	// WithoutMeta are JPEGs that have no meta object (stored before meta
	// objects existed, or a write cut short): they cannot be indexed.
	WithoutMeta int
}

// Rebuild reads meta objects with rebuildWorkers goroutines and indexes
// them rebuildBatch at a time, one index transaction each.
const (
	rebuildWorkers = 8
	rebuildBatch   = 500
)

// Rebuild indexes every frame whose meta object and JPEG are in the
// object store, into the store's index, which may be empty (a lost
// bbolt file, a dropped database) or partly filled (an index inserts a
// frame once). A frame's thumbnail is kept when its object exists. What
// retention deleted has no objects left and is not brought back; the
// deletion marks (tombstones) themselves are not in the objects, so a
// replay of a deleted frame after a rebuild is stored again.
func (s *Store) Rebuild(ctx context.Context) (RebuildReport, error) {
	var rep RebuildReport
	if err := s.check(ctx); err != nil {
		return rep, fmt.Errorf("rebuild: %w", err)
	}
	pictures := map[string]int64{}
	for _, top := range []string{framesDir, thumbsDir} {
		err := s.objects.List(ctx, top+"/", func(o ObjectInfo) error {
			pictures[o.Key] = o.Size
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("rebuild: list %s: %w", top, err)
		}
	}
	var metas []string
	err := s.objects.List(ctx, metaDir+"/", func(o ObjectInfo) error {
		if isMetaPath(o.Key) {
			metas = append(metas, o.Key)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("rebuild: list %s: %w", metaDir, err)
	}
	rep.MetaObjects = len(metas)

	var (
		mu       sync.Mutex
		next     atomic.Int64
		firstErr error
		wg       sync.WaitGroup
	)
	withMeta := make(map[string]bool, len(metas))
	chunks := (len(metas) + rebuildBatch - 1) / rebuildBatch
	for range rebuildWorkers {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks || ctx.Err() != nil {
					return
				}
				chunk := metas[c*rebuildBatch : min((c+1)*rebuildBatch, len(metas))]
				res, err := s.rebuildChunk(ctx, chunk, pictures)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for i, r := range res {
					if r.jpeg != "" {
						withMeta[r.jpeg] = true
					}
					switch r.outcome {
					case rebuildNoPicture:
						rep.NoPicture = append(rep.NoPicture, chunk[i])
					case rebuildUnreadable:
						rep.Unreadable = append(rep.Unreadable, chunk[i])
					case rebuildIndexed:
						rep.Indexed++
					case rebuildKnown:
						rep.AlreadyIndexed++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for key := range pictures {
		if isObjectPath(framesDir, key) && !withMeta[key] {
			rep.WithoutMeta++
		}
	}
	if err := errors.Join(firstErr, ctx.Err()); err != nil {
		return rep, fmt.Errorf("rebuild: %w", err)
	}
	s.log.Info("index rebuilt from the objects", "index", s.index.Describe(), "meta_objects", rep.MetaObjects,
		"indexed", rep.Indexed, "already_indexed", rep.AlreadyIndexed, "no_picture", len(rep.NoPicture),
		"unreadable", len(rep.Unreadable), "jpegs_without_meta", rep.WithoutMeta)
	return rep, nil
}

type rebuildOutcome int

const (
	rebuildIndexed rebuildOutcome = iota
	rebuildKnown
	rebuildNoPicture
	rebuildUnreadable
)

type rebuildResult struct {
	outcome rebuildOutcome
	jpeg    string // the JPEG the meta object names ("" when unreadable)
}

// rebuildChunk reads the meta objects of keys and indexes their frames
// in one batch.
func (s *Store) rebuildChunk(ctx context.Context, keys []string, pictures map[string]int64) ([]rebuildResult, error) {
	res := make([]rebuildResult, len(keys))
	var entries []Entry
	var at []int
	for i, key := range keys {
		e, outcome, err := s.readMeta(ctx, key, pictures)
		if err != nil {
			return res[:i], err
		}
		res[i] = rebuildResult{outcome: outcome, jpeg: e.Path}
		if outcome == rebuildIndexed {
			entries, at = append(entries, e), append(at, i)
		}
	}
	if len(entries) == 0 {
		return res, nil
	}
	inserted, err := s.index.InsertBatch(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("index %d frames: %w", len(entries), err)
	}
	for k, i := range at {
		if !inserted[k] {
			res[i].outcome = rebuildKnown
		}
	}
	return res, nil
}

// readMeta reads one meta object: the entry to index (outcome
// rebuildIndexed), or why there is none.
func (s *Store) readMeta(ctx context.Context, key string, pictures map[string]int64) (Entry, rebuildOutcome, error) {
	raw, err := s.objects.Get(ctx, key)
	if errors.Is(err, ErrObjectNotFound) {
		return Entry{}, rebuildNoPicture, nil // deleted meanwhile
	}
	if err != nil {
		return Entry{}, 0, fmt.Errorf("read %s: %w", key, err)
	}
	id := strings.TrimSuffix(key[strings.LastIndexByte(key, '/')+1:], ".json")
	rec, err := decodeRecord(id, raw)
	if err != nil || rec.FrameID != id || metaPath(rec.meta()) != key {
		return Entry{}, rebuildUnreadable, nil
	}
	e := rec.entry()
	if size, ok := pictures[e.Path]; !ok || size != e.Meta.SizeBytes {
		return Entry{Path: e.Path}, rebuildNoPicture, nil
	}
	if e.ThumbPath != "" {
		if size, ok := pictures[e.ThumbPath]; !ok || size != e.Meta.ThumbnailBytes {
			e.ThumbPath, e.Meta.ThumbnailBytes = "", 0
		}
	}
	return e, rebuildIndexed, nil
}
