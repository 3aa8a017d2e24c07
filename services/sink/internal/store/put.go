package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
)

// relPath is the frame's object key, '/'-separated.
func relPath(m FrameMeta) string { return objectKey(framesDir, m) }

func thumbPath(m FrameMeta) string { return objectKey(thumbsDir, m) }

// metaPath is the key of the frame's metadata object: what the index
// holds of it, beside its pictures, so that the index can be rebuilt
// from the objects alone (Rebuild).
func metaPath(m FrameMeta) string {
	return path.Join(metaDir, m.Site, m.CameraID, objectDay(m), m.FrameID+".json")
}

func objectKey(top string, m FrameMeta) string {
	return path.Join(top, m.Site, m.CameraID, objectDay(m), m.FrameID+".jpg")
}

func objectDay(m FrameMeta) string { return m.CaptureTime.UTC().Format("2006-01-02") }

// prepare validates meta and jpeg and returns the normalised metadata.
func (s *Store) prepare(meta FrameMeta, jpeg []byte) (FrameMeta, error) {
	if err := ValidateFrameID(meta.FrameID); err != nil {
		return FrameMeta{}, err
	}
	id := meta.FrameID
	if err := validateName("camera id", meta.CameraID); err != nil {
		return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
	}
	if err := validateName("site", meta.Site); err != nil {
		return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
	}
	if meta.EventID != "" {
		if err := validateName("event id", meta.EventID); err != nil {
			return FrameMeta{}, fmt.Errorf("frame %q: %w", id, err)
		}
	}
	if meta.CaptureTime.IsZero() {
		return FrameMeta{}, fmt.Errorf("%w: frame %q has no capture time", ErrInvalidFrame, id)
	}
	if !timeRepresentable(meta.CaptureTime) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q capture time %s is outside %d..%d", ErrInvalidFrame, id,
			meta.CaptureTime, minTime.Year(), maxTime.Year())
	}
	if len(jpeg) == 0 {
		return FrameMeta{}, fmt.Errorf("%w: frame %q has no JPEG data", ErrInvalidFrame, id)
	}
	if meta.SizeBytes != 0 && meta.SizeBytes != int64(len(jpeg)) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q size_bytes %d but JPEG has %d bytes", ErrInvalidFrame, id, meta.SizeBytes, len(jpeg))
	}
	sum := sha256.Sum256(jpeg)
	digest := hex.EncodeToString(sum[:])
	if meta.ContentSHA256 != "" && !equalFoldASCII(meta.ContentSHA256, digest) {
		return FrameMeta{}, fmt.Errorf("%w: frame %q content_sha256 %s does not match JPEG (%s)", ErrInvalidFrame, id, meta.ContentSHA256, digest)
	}
	meta.ContentSHA256 = digest
	meta.SizeBytes = int64(len(jpeg))
	meta.CaptureTime = meta.CaptureTime.Round(0).UTC()
	if meta.StoredTime.IsZero() {
		meta.StoredTime = s.now()
	}
	meta.StoredTime = meta.StoredTime.Round(0).UTC()
	if len(meta.Boxes) > 0 {
		meta.Boxes = append([]Box(nil), meta.Boxes...)
	} else {
		meta.Boxes = nil
	}
	if len(meta.Labels) > 0 {
		meta.Labels = append([]Label(nil), meta.Labels...)
	} else {
		meta.Labels = nil
	}
	meta.ThumbnailBytes = 0
	return meta, nil
}

func equalFoldASCII(a, b string) bool {
	return len(a) == len(b) && bytes.EqualFold([]byte(a), []byte(b))
}

// Put stores a frame without a thumbnail; see PutFrame.
func (s *Store) Put(ctx context.Context, meta FrameMeta, jpeg []byte) (stored bool, err error) {
	return s.PutFrame(ctx, meta, jpeg, nil)
}

// PutFrame stores a frame (and its thumbnail, if any) once. It returns
// stored=false, and changes nothing, when meta.FrameID is already indexed
// or was deleted by retention (a replay), whatever meta and jpeg hold then.
// PutFrame fills in ContentSHA256 and SizeBytes (checking them when given)
// and StoredTime when zero, and adds the frame to its event.
//
// If the frame's object exists but the id is not indexed (a crash came
// between a previous Put's object write and its index commit), PutFrame
// writes the object again and indexes the frame.
func (s *Store) PutFrame(ctx context.Context, meta FrameMeta, jpeg, thumb []byte) (stored bool, err error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("put frame %q: %w", meta.FrameID, err)
	}
	meta, err = s.prepare(meta, jpeg)
	if err != nil {
		return false, fmt.Errorf("put: %w", err)
	}
	id := meta.FrameID
	mu := s.idLock(id)
	mu.Lock()
	defer mu.Unlock()

	existing, found, deleted, err := s.index.Lookup(ctx, id)
	if err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}
	if found {
		if existing.Meta.ContentSHA256 != meta.ContentSHA256 {
			s.log.Warn("replayed frame has different content; keeping the stored one",
				"frame_id", id, "stored_sha256", existing.Meta.ContentSHA256, "replay_sha256", meta.ContentSHA256)
		} else {
			s.log.Debug("frame already stored", "frame_id", id)
		}
		return false, nil
	}
	if deleted {
		s.log.Debug("frame was deleted by retention; not stored again", "frame_id", id)
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("put frame %q: %w", id, err)
	}

	rel := relPath(meta)
	if err := s.objects.Put(ctx, rel, jpeg); err != nil {
		return false, fmt.Errorf("put frame %q: write %s: %w", id, rel, err)
	}
	entry := Entry{Meta: meta, Path: rel}
	if len(thumb) > 0 {
		tp := thumbPath(meta)
		if err := s.objects.Put(ctx, tp, thumb); err != nil {
			return false, fmt.Errorf("put frame %q: write thumbnail %s: %w", id, tp, err)
		}
		entry.ThumbPath, entry.Meta.ThumbnailBytes = tp, int64(len(thumb))
	}
	metaJSON, err := json.Marshal(recordFromEntry(entry))
	if err != nil {
		return false, fmt.Errorf("put frame %q: encode its metadata: %w", id, err)
	}
	mp := metaPath(meta)
	if err := s.objects.Put(ctx, mp, metaJSON); err != nil {
		return false, fmt.Errorf("put frame %q: write metadata %s: %w", id, mp, err)
	}

	// The objects are durable; commit the index. From here on the caller's
	// context is not consulted, so that a cancelled caller does not leave
	// an unindexed object behind.
	stored, err = s.index.Insert(context.WithoutCancel(ctx), entry)
	if err != nil {
		return false, fmt.Errorf("put frame %q: commit index (object %s already written): %w", id, rel, err)
	}
	if !stored {
		s.log.Debug("frame indexed meanwhile by another writer", "frame_id", id)
		return false, nil
	}
	s.log.Debug("frame stored", "frame_id", id, "camera_id", meta.CameraID, "path", rel, "size", meta.SizeBytes)
	return stored, nil
}
