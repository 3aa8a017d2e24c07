package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// MaxIDLength is the maximum length of a frame id, camera id or site name.
const MaxIDLength = 200

var (
	// minTime and maxTime bound the capture times that fit an int64 of
	// nanoseconds since the Unix epoch (years 1677 to 2262).
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// validateName checks a frame id, camera id or site name: 1..MaxIDLength
// bytes of [A-Za-z0-9._-], and not starting with '.', which also rules out
// "." and ".." and the store's own temporary files (".tmp-...").
// Such names are safe as single path segments and contain no 0x00, which the
// index keys use as a separator.
func validateName(kind, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidID, kind)
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("%w: %s %.40q... is %d bytes long (max %d)", ErrInvalidID, kind, s, len(s), MaxIDLength)
	}
	if s[0] == '.' {
		return fmt.Errorf("%w: %s %q starts with '.'", ErrInvalidID, kind, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %s %q has invalid byte %q at %d (allowed: A-Z a-z 0-9 . _ -)", ErrInvalidID, kind, s, c, i)
		}
	}
	return nil
}

// ValidateFrameID reports whether id is acceptable as a frame id.
// The returned error wraps ErrInvalidID.
func ValidateFrameID(id string) error { return validateName("frame id", id) }

// encodeTime encodes t as 8 bytes whose byte order is the time order:
// big-endian Unix nanoseconds with the sign bit flipped, so that times before
// 1970 sort before later ones. t must lie within [minTime, maxTime].
func encodeTime(t time.Time) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano())^(1<<63))
	return b
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

// timeRepresentable reports whether t fits the index's nanosecond encoding.
func timeRepresentable(t time.Time) bool {
	return !t.Before(minTime) && !t.After(maxTime)
}

// cameraPrefix is the by_time key prefix of one camera: camera + 0x00.
func cameraPrefix(camera string) []byte {
	p := make([]byte, 0, len(camera)+1)
	p = append(p, camera...)
	return append(p, 0)
}

// timeKey builds prefix + time(8) + 0x00 + frameID. With an empty prefix it
// is a by_time_all key, with cameraPrefix(camera) a by_time key.
func timeKey(prefix []byte, t time.Time, frameID string) []byte {
	tb := encodeTime(t)
	k := make([]byte, 0, len(prefix)+8+1+len(frameID))
	k = append(k, prefix...)
	k = append(k, tb[:]...)
	k = append(k, 0)
	return append(k, frameID...)
}

// splitTimeKey parses the part of a time key after its prefix.
func splitTimeKey(rest []byte) (t time.Time, frameID string, ok bool) {
	if len(rest) < 10 || rest[8] != 0 {
		return time.Time{}, "", false
	}
	id := string(rest[9:])
	if ValidateFrameID(id) != nil {
		return time.Time{}, "", false
	}
	return decodeTime(rest[:8]), id, true
}

// Page tokens are base64url (unpadded) of one kind byte followed by the last
// index key returned. The kind byte keeps a token of one kind of query from
// being misread by another; the key's prefix ties it to its camera or event.
const (
	tokenCamera       byte = 'c' // by_time (frames of one camera)
	tokenAll          byte = 'a' // by_time_all (frames of all cameras)
	tokenEvent        byte = 'e' // by_event (frames of one event)
	tokenEventsCamera byte = 'C' // ev_by_time (events of one camera)
	tokenEventsAll    byte = 'A' // ev_by_time_all (events of all cameras)
	// Newest-first scans of the same buckets.
	tokenEventsCameraDesc byte = 'D' // ev_by_time, descending
	tokenEventsAllDesc    byte = 'B' // ev_by_time_all, descending
)

func encodePageToken(kind byte, key []byte) string {
	b := make([]byte, 0, 1+len(key))
	b = append(b, kind)
	b = append(b, key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the index key held by token, checking that it is
// a key of the kind, and with the prefix, that the query scans.
func decodePageToken(token string, want byte, prefix []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url: %v", ErrInvalidPageToken, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidPageToken)
	}
	kind, key := raw[0], raw[1:]
	if kind != want {
		return nil, fmt.Errorf("%w: token belongs to a different kind of query", ErrInvalidPageToken)
	}
	if !bytes.HasPrefix(key, prefix) {
		return nil, fmt.Errorf("%w: token belongs to a different camera or event", ErrInvalidPageToken)
	}
	if _, _, ok := splitTimeKey(key[len(prefix):]); !ok {
		return nil, fmt.Errorf("%w: malformed key", ErrInvalidPageToken)
	}
	return key, nil
}

// ValidateCameraID reports whether id is acceptable as a camera id.
func ValidateCameraID(id string) error { return validateName("camera id", id) }
