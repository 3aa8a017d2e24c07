package store

import (
	"context"
	"time"
)

// Entry is what an Index holds of one frame: its metadata (ThumbnailBytes
// is the thumbnail's size, 0 for none) and the keys of its objects.
type Entry struct {
	Meta      FrameMeta
	Path      string // object key of the JPEG
	ThumbPath string // object key of the thumbnail ("" for none)
}

// IndexCheck is what Index.Check found: every entry it holds, and the
// inconsistencies of the index itself (a search key without its entry, a
// counter that does not match the entries, an entry it cannot decode).
type IndexCheck struct {
	Frames   int // entries, those it cannot decode included
	Entries  []Entry
	Problems []string
}

// Index is where a Store keeps what it knows of its frames and events:
// the frames' metadata, their events' aggregates, per-camera counters and
// the ids retention deleted. It never holds bytes of pictures; those are
// in Objects. Two implementations honour this contract, checked by one
// suite (the store contract, run on each): a bbolt file on the sink's
// disk (OpenBolt, the embedded default) and PostgreSQL (OpenPostgres),
// which several sink replicas share.
//
//   - Insert adds a frame's entry, adds it to its event (creating the
//     event with its first frame) and counts it, atomically. It returns
//     false and changes nothing when the id is indexed or was deleted by
//     retention: concurrent Inserts of one id, from one process or
//     several sharing the index, index it once.
//   - Lookup tells whether an id is indexed, deleted by retention, or
//     neither.
//   - ListFrames and ListEvents answer Query and EventQuery in (capture
//     time, id) order (ListEvents by start time, newest first when asked)
//     with opaque page tokens: a token is valid for the same query only,
//     anything else gets ErrInvalidPageToken. Names are validated by the
//     Store before they reach the index.
//   - Delete removes entries (retention): their events and counters
//     follow, the ids are remembered as deleted, and the removed entries
//     come back so that the caller can delete their objects.
//   - Close releases the index; calls after it return ErrClosed.
type Index interface {
	Insert(ctx context.Context, e Entry) (bool, error)
	// InsertBatch is Insert of every entry, in one transaction: inserted[i]
	// tells whether es[i] was indexed by this call.
	InsertBatch(ctx context.Context, es []Entry) (inserted []bool, err error)
	Lookup(ctx context.Context, id string) (e Entry, found, deleted bool, err error)
	ListFrames(ctx context.Context, q Query) ([]FrameMeta, string, error)
	GetEvent(ctx context.Context, id string) (Event, bool, error)
	ListEvents(ctx context.Context, q EventQuery) ([]Event, string, error)
	// Count is the number of indexed frames.
	Count(ctx context.Context) (uint64, error)
	// Stats are the totals and, per camera (one camera only unless
	// camera is ""), its counters and oldest and newest capture times.
	// Backend is left for the Store to fill.
	Stats(ctx context.Context, camera string) (Stats, error)
	// Expired returns up to limit ids of camera's oldest frames that pol
	// deletes at now: captured more than MaxAge ago, or while the camera
	// holds more than MaxBytes.
	Expired(ctx context.Context, camera string, pol RetentionPolicy, now time.Time, limit int) ([]string, error)
	Delete(ctx context.Context, ids []string, now time.Time) ([]Entry, error)
	// Check reads every entry and checks the index's own consistency.
	Check(ctx context.Context) (IndexCheck, error)
	// Describe names the index for logs (no credentials).
	Describe() string
	Close() error
}
