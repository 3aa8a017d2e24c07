package store

import (
	"context"
	"fmt"
	"time"
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
			ids, err := s.index.Expired(ctx, cam.CameraID, pol, now, retentionBatch)
			if err != nil {
				return res, fmt.Errorf("retention of camera %s: %w", cam.CameraID, err)
			}
			if len(ids) == 0 {
				break
			}
			deleted, err := s.index.Delete(ctx, ids, now)
			if err != nil {
				return res, fmt.Errorf("retention of camera %s: %w", cam.CameraID, err)
			}
			var keys []string
			for _, e := range deleted {
				res.Frames++
				res.Bytes += e.Meta.SizeBytes
				// The metadata first: a picture whose delete fails stays
				// unindexed, and without its metadata no rebuild brings it
				// back.
				keys = append(keys, metaPath(e.Meta), e.Path)
				if e.ThumbPath != "" {
					keys = append(keys, e.ThumbPath)
				}
			}
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
