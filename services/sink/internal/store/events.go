package store

import (
	"context"
	"fmt"
)

// GetEvent returns one event.
func (s *Store) GetEvent(ctx context.Context, eventID string) (Event, error) {
	if err := s.check(ctx); err != nil {
		return Event{}, fmt.Errorf("get event %q: %w", eventID, err)
	}
	if err := validateName("event id", eventID); err != nil {
		return Event{}, fmt.Errorf("get event: %w", err)
	}
	e, found, err := s.index.GetEvent(ctx, eventID)
	if err != nil {
		return Event{}, fmt.Errorf("get event %q: %w", eventID, err)
	}
	if !found {
		return Event{}, fmt.Errorf("get event %q: %w", eventID, ErrNotFound)
	}
	return e, nil
}

// ListEvents returns events matching q in (start time, event id) order
// (descending with q.NewestFirst) and a token for the next page ("" when
// there is none). Start is inclusive, End exclusive, in either order. A page
// token is only valid with the same CameraID and order it was issued for.
func (s *Store) ListEvents(ctx context.Context, q EventQuery) ([]Event, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	if q.CameraID != "" {
		if err := validateName("camera id", q.CameraID); err != nil {
			return nil, "", fmt.Errorf("list events: %w", err)
		}
	}
	if err := validateRange(q.Start, q.End); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	q.Limit = pageLimit(q.Limit)
	out, next, err := s.index.ListEvents(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("list events camera=%q: %w", q.CameraID, err)
	}
	return out, next, nil
}
