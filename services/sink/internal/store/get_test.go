package store

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func testPutGetRoundTrip(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	s.now = func() time.Time { return fixed }

	full := newFrame("cam-1", 50, base.Add(123456789*time.Nanosecond))
	minimal := FrameMeta{FrameID: "x", Site: "s", CameraID: "c", CaptureTime: time.Unix(0, 1)}
	local := newFrame("cam.2", 7, time.Date(2024, 11, 27, 1, 0, 0, 0, time.FixedZone("UTC+3", 3*3600)))
	withStored := newFrame("cam-3", 8, base)
	withStored.StoredTime = base.Add(time.Second)
	pre1970 := newFrame("cam-4", 9, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC))

	tests := []struct {
		name     string
		meta     FrameMeta
		size     int
		wantPath string
		wantStor time.Time
	}{
		{"full", full, 1000, "frames/site-a/cam-1/2024-11-26/cam-1_1732650000_00000050.jpg", fixed},
		{"minimal", minimal, 3, "frames/s/c/1970-01-01/x.jpg", fixed},
		{"non-UTC capture time uses UTC date", local, 10, "frames/site-a/cam.2/2024-11-26/cam.2_1732650000_00000007.jpg", fixed},
		{"given stored time kept", withStored, 10, "frames/site-a/cam-3/2024-11-26/cam-3_1732650000_00000008.jpg", withStored.StoredTime},
		{"before 1970", pre1970, 10, "frames/site-a/cam-4/1969-07-20/cam-4_1732650000_00000009.jpg", fixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := fakeJPEG(tc.meta.FrameID, tc.size)
			if !mustPut(t, s, tc.meta, data) {
				t.Fatal("first Put returned stored=false")
			}
			got, gotData, err := s.Get(context.Background(), tc.meta.FrameID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(gotData, data) {
				t.Fatal("Get returned different bytes")
			}
			want := tc.meta
			want.CaptureTime = want.CaptureTime.UTC()
			want.StoredTime = tc.wantStor
			want.ContentSHA256 = sha(data)
			want.SizeBytes = int64(len(data))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Get meta:\n got %+v\nwant %+v", got, want)
			}
			onDisk, err := s.Objects().Get(context.Background(), tc.wantPath)
			if err != nil {
				t.Fatalf("object not at %s: %v", tc.wantPath, err)
			}
			if !bytes.Equal(onDisk, data) {
				t.Fatal("file content differs")
			}
		})
	}
	if n, err := s.Count(context.Background()); err != nil || n != uint64(len(tests)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(tests))
	}
}

func testGetNotFound(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	_, _, err := s.Get(context.Background(), "cam-1_1_00000001")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
}
