package store

import (
	"bytes"
	"testing"
	"time"
)

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		minTime,
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		base,
		maxTime,
	}
	for i := 1; i < len(times); i++ {
		a, b := encodeTime(times[i-1]), encodeTime(times[i])
		if bytes.Compare(a[:], b[:]) >= 0 {
			t.Fatalf("encodeTime(%s) >= encodeTime(%s)", times[i-1], times[i])
		}
		if got := decodeTime(b[:]); !got.Equal(times[i]) {
			t.Fatalf("decodeTime = %s, want %s", got, times[i])
		}
	}
}
