package store

import (
	"context"
	"fmt"
	"time"
)

// CameraStats are one camera's numbers.
type CameraStats struct {
	CameraID       string
	Frames, Bytes  int64
	Events         int64
	Oldest, Newest time.Time // capture times; zero without frames
}

// Stats are the store's counters, kept in the index.
type Stats struct {
	Frames     uint64 // frames indexed
	Bytes      uint64 // sum of their JPEG sizes
	Events     uint64
	Expired    uint64 // frames deleted by retention, ever
	IndexBytes int64  // size of the index (its file, or its tables)
	Backend    string // Objects.Kind()
	Cameras    []CameraStats
}

// Count returns the number of frames indexed.
func (s *Store) Count(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	n, err := s.index.Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// Stats returns the store's counters and each camera's numbers.
func (s *Store) Stats(ctx context.Context) (Stats, error) { return s.StatsOf(ctx, "") }

// StatsOf returns the store's counters and one camera's numbers (every
// camera's when camera is "").
func (s *Store) StatsOf(ctx context.Context, camera string) (Stats, error) {
	if err := s.check(ctx); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if camera != "" {
		if err := validateName("camera id", camera); err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	st, err := s.index.Stats(ctx, camera)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	st.Backend = s.objects.Kind()
	return st, nil
}
