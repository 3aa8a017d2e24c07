package store

import (
	"context"
	"testing"
)

func testStats(t *testing.T, b backend) {
	s := openStore(t, b, t.TempDir())
	ctx := context.Background()
	var total uint64
	for i := range 5 {
		m := newFrame("cam-1", uint64(i), base)
		mustPut(t, s, m, fakeJPEG(m.FrameID, 100*(i+1)))
		total += uint64(100 * (i + 1))
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != 5 || st.Bytes != total || st.IndexBytes <= 0 {
		t.Fatalf("Stats = %+v, want 5 frames, %d bytes", st, total)
	}
}
