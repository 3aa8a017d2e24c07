package store

import "time"

// Query selects frames for List.
type Query struct {
	CameraID  string    // empty: all cameras
	EventID   string    // non-empty: only this event's frames
	Start     time.Time // inclusive; zero: unbounded
	End       time.Time // exclusive; zero: unbounded
	MinScore  float64   // only frames scoring at least this
	Limit     int       // <= 0: DefaultListLimit; capped at MaxListLimit
	PageToken string    // from a previous List with the same query
}

// EventQuery selects events for ListEvents by their start time.
type EventQuery struct {
	CameraID string
	Start    time.Time
	End      time.Time
	MinScore float64 // peak score at least this
	// Label, when set, keeps the events where a detector found this kind
	// of object.
	Label     string
	Limit     int
	PageToken string
	// NewestFirst lists in descending (start time, event id) order. Its
	// page tokens are not valid without it, nor the other way round.
	NewestFirst bool
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)
