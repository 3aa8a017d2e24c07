package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Get returns a frame's metadata and JPEG. It returns an error wrapping
// ErrNotFound when the id is not indexed (or was deleted by retention), and
// ErrCorrupt when the indexed object is missing or its content does not
// match the recorded SHA-256.
func (s *Store) Get(ctx context.Context, frameID string) (FrameMeta, []byte, error) {
	rec, err := s.getEntry(ctx, frameID)
	if err != nil {
		return FrameMeta{}, nil, err
	}
	data, err := s.objects.Get(ctx, rec.Path)
	if err != nil {
		if errors.Is(err, ErrObjectNotFound) {
			return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: indexed object %s is missing", frameID, ErrCorrupt, rec.Path)
		}
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != rec.Meta.ContentSHA256 {
		return FrameMeta{}, nil, fmt.Errorf("get frame %q: %w: object %s has sha256 %s, index has %s",
			frameID, ErrCorrupt, rec.Path, got, rec.Meta.ContentSHA256)
	}
	return rec.Meta, data, nil
}

// GetMeta returns a frame's metadata only.
func (s *Store) GetMeta(ctx context.Context, frameID string) (FrameMeta, error) {
	rec, err := s.getEntry(ctx, frameID)
	if err != nil {
		return FrameMeta{}, err
	}
	return rec.Meta, nil
}

// GetThumbnail returns a frame's thumbnail JPEG; ErrNotFound when the frame
// or its thumbnail is not stored.
func (s *Store) GetThumbnail(ctx context.Context, frameID string) ([]byte, error) {
	rec, err := s.getEntry(ctx, frameID)
	if err != nil {
		return nil, err
	}
	if rec.ThumbPath == "" {
		return nil, fmt.Errorf("get thumbnail of %q: %w: the frame has no thumbnail", frameID, ErrNotFound)
	}
	data, err := s.objects.Get(ctx, rec.ThumbPath)
	if err != nil {
		if errors.Is(err, ErrObjectNotFound) {
			return nil, fmt.Errorf("get thumbnail of %q: %w: indexed object %s is missing", frameID, ErrCorrupt, rec.ThumbPath)
		}
		return nil, fmt.Errorf("get thumbnail of %q: %w", frameID, err)
	}
	return data, nil
}

func (s *Store) getEntry(ctx context.Context, frameID string) (Entry, error) {
	if err := s.check(ctx); err != nil {
		return Entry{}, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if err := ValidateFrameID(frameID); err != nil {
		return Entry{}, fmt.Errorf("get: %w", err)
	}
	rec, found, deleted, err := s.index.Lookup(ctx, frameID)
	if err != nil {
		return Entry{}, fmt.Errorf("get frame %q: %w", frameID, err)
	}
	if !found {
		if deleted {
			return Entry{}, fmt.Errorf("get frame %q: %w (deleted by retention)", frameID, ErrNotFound)
		}
		return Entry{}, fmt.Errorf("get frame %q: %w", frameID, ErrNotFound)
	}
	return rec, nil
}
