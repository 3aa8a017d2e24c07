package store

import (
	"context"
	"fmt"
	"time"
)

// List returns frames matching q in (capture time, frame id) order, at most
// q.Limit of them, and a token for the next page ("" when there is none).
// Start is inclusive, End exclusive; zero times are unbounded. A page token
// is only valid with the same CameraID (or EventID) it was issued for; a
// malformed one gives an error wrapping ErrInvalidPageToken. Pages are
// consistent cursors: frames stored after a page was returned appear on
// later pages only if they sort after that page's last frame.
func (s *Store) List(ctx context.Context, q Query) ([]FrameMeta, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	if q.CameraID != "" {
		if err := validateName("camera id", q.CameraID); err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
	}
	if q.EventID != "" {
		if err := validateName("event id", q.EventID); err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
	}
	if err := validateRange(q.Start, q.End); err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	q.Limit = pageLimit(q.Limit)
	out, next, err := s.index.ListFrames(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("list camera=%q event=%q start=%s end=%s: %w", q.CameraID, q.EventID, q.Start, q.End, err)
	}
	return out, next, nil
}

// validateRange refuses an end before the start.
func validateRange(start, end time.Time) error {
	if !start.IsZero() && !end.IsZero() && end.Before(start) {
		return fmt.Errorf("%w: end %s is before start %s", ErrInvalidQuery, end, start)
	}
	return nil
}

// pageLimit is the page size a query's Limit asks for.
func pageLimit(limit int) int {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	return min(limit, MaxListLimit)
}
