package store

import (
	"context"
	"errors"
)

// ErrObjectNotFound is returned (wrapped) by Objects.Get for a missing key.
var ErrObjectNotFound = errors.New("store: object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string // '/'-separated, relative to the backend's root
	Size int64
}

// Objects is where a Store keeps the bytes of frames and thumbnails: a
// directory (FSObjects) or an S3 bucket (S3Objects). Both honour the same
// contract, checked by the same test suite:
//
//   - Put makes key hold data, atomically (a reader sees the old object or
//     all of data, never a part) and durably once it returns nil.
//   - Get returns the bytes of key, or an error wrapping ErrObjectNotFound.
//   - Delete removes key; a missing key is not an error.
//   - List calls fn for every object whose key starts with prefix, in no
//     particular order; it includes leftovers (temporary files) so that
//     Verify can report them.
//
// Keys are produced by the store: '/'-separated segments of
// [A-Za-z0-9._-], none starting with '.'.
type Objects interface {
	Put(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Kind is "filesystem" or "s3".
	Kind() string
	// Describe names the location for logs (no credentials).
	Describe() string
}
