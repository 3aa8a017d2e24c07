package sink

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/sink/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testAPI(t *testing.T) *api {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	// Two cameras, two events each of 3 frames; the middle frame peaks.
	for _, cam := range []string{"cam-1", "cam-2"} {
		for e := 0; e < 2; e++ {
			ev := fmt.Sprintf("%s_9_e%08d", cam, e*10)
			for i := 0; i < 3; i++ {
				seq := uint64(e*10 + i)
				m := store.FrameMeta{
					FrameID: fmt.Sprintf("%s_9_%08d", cam, seq), Site: "edge", CameraID: cam, SessionEpoch: 9, Sequence: seq,
					CaptureTime: t0.Add(time.Duration(e)*time.Minute + time.Duration(i)*time.Second),
					MotionScore: []float64{0.1, 0.5, 0.2}[i] + float64(e)/10, EventID: ev, EventFrameIndex: uint32(i),
					EventPhase: []int32{store.PhaseStart, store.PhaseUpdate, store.PhaseEnd}[i], Motion: true,
					Boxes: []store.Box{{X: 1, Y: 2, Width: 3, Height: 4}},
				}
				if _, err := st.PutFrame(ctx, m, []byte{0xFF, 0xD8, byte(seq), 0xFF, 0xD9}, []byte("thumb")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return &api{store: st}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), field) {
		t.Fatalf("err = %v, want InvalidArgument naming %q", err, field)
	}
}

func TestAPIInvalidArguments(t *testing.T) {
	a := testAPI(t)
	ctx := context.Background()
	ts := timestamppb.New
	cases := []struct {
		field string
		call  func() error
	}{
		{"page_size", func() error { _, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{PageSize: 5000}); return err }},
		{"page_size", func() error { _, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageSize: -1}); return err }},
		{"min_score", func() error { _, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{MinScore: 1.5}); return err }},
		{"min_score", func() error {
			_, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{MinScore: math.NaN()})
			return err
		}},
		{"label", func() error {
			_, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{Label: "person'; --"})
			return err
		}},
		{"end_time", func() error {
			_, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{StartTime: ts(t0), EndTime: ts(t0.Add(-time.Hour))})
			return err
		}},
		{"start_time", func() error {
			_, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{StartTime: &timestamppb.Timestamp{Nanos: -1}})
			return err
		}},
		{"camera_id", func() error { _, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{CameraId: "../x"}); return err }},
		{"camera_id", func() error { _, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "a b"}); return err }},
		{"event_id", func() error { _, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{EventId: "a/b"}); return err }},
		{"page_token", func() error { _, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{PageToken: "!!"}); return err }},
		{"page_token", func() error { _, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageToken: "YWJj"}); return err }},
		{"event_id", func() error { _, err := a.GetEvent(ctx, &cefiotv1.GetEventRequest{}); return err }},
		{"event_id", func() error { _, err := a.GetEvent(ctx, &cefiotv1.GetEventRequest{EventId: ".."}); return err }},
		{"frame_id", func() error { _, err := a.GetFrame(ctx, &cefiotv1.GetFrameRequest{FrameId: "a/b"}); return err }},
		{"camera_id", func() error { _, err := a.GetStats(ctx, &cefiotv1.GetStatsRequest{CameraId: "é"}); return err }},
	}
	for _, c := range cases {
		wantInvalid(t, c.call(), c.field)
	}
	if _, err := a.GetEvent(ctx, &cefiotv1.GetEventRequest{EventId: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetEvent missing: %v", err)
	}
}

func TestAPISearch(t *testing.T) {
	a := testAPI(t)
	ctx := context.Background()
	// Events of cam-1, one per page.
	var got []string
	tok := ""
	for {
		resp, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{CameraId: "cam-1", PageSize: 1, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEvents() {
			got = append(got, e.GetEventId())
			if e.GetFrameCount() != 3 || !e.GetEnded() || e.GetBestFrameId() == "" {
				t.Errorf("event %v", e)
			}
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if fmt.Sprint(got) != "[cam-1_9_e00000000 cam-1_9_e00000010]" {
		t.Fatalf("events of cam-1 = %v", got)
	}
	ev, err := a.GetEvent(ctx, &cefiotv1.GetEventRequest{EventId: "cam-2_9_e00000010"})
	if err != nil || ev.GetEvent().GetBestFrameId() != "cam-2_9_00000011" || math.Abs(ev.GetEvent().GetPeakScore()-0.6) > 1e-9 {
		t.Fatalf("GetEvent = %v, %v", ev, err)
	}
	// Events scoring at least 0.55: the second of each camera.
	resp, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{MinScore: 0.55})
	if err != nil || len(resp.GetEvents()) != 2 {
		t.Fatalf("ListEvents min_score: %v, %v", resp, err)
	}
	// Frames of one event, and by score.
	fr, err := a.ListFrames(ctx, &cefiotv1.ListFramesRequest{EventId: "cam-1_9_e00000010"})
	if err != nil || len(fr.GetFrames()) != 3 || fr.GetFrames()[2].GetEventPhase() != cefiotv1.EventPhase_EVENT_PHASE_END {
		t.Fatalf("frames of event: %v, %v", fr, err)
	}
	fr, err = a.ListFrames(ctx, &cefiotv1.ListFramesRequest{MinScore: 0.5})
	if err != nil || len(fr.GetFrames()) != 4 {
		t.Fatalf("frames with score >= 0.5: %d, %v", len(fr.GetFrames()), err)
	}
	st, err := a.GetStats(ctx, &cefiotv1.GetStatsRequest{})
	if err != nil || st.GetFrames() != 12 || st.GetEvents() != 4 || len(st.GetCameras()) != 2 ||
		!st.GetCameras()[0].GetOldestTime().AsTime().Equal(t0) || st.GetBackend() != "filesystem" {
		t.Fatalf("GetStats = %v, %v", st, err)
	}
	// Images over HTTP.
	mux := http.NewServeMux()
	mux.Handle("GET /v1/frames/{frame_id}/jpeg", a.jpegHandler())
	mux.Handle("GET /v1/frames/{frame_id}/thumbnail", a.thumbnailHandler())
	for _, c := range []struct {
		path   string
		code   int
		ctype  string
		length int
	}{
		{"/v1/frames/cam-1_9_00000001/jpeg", 200, "image/jpeg", 5},
		{"/v1/frames/cam-1_9_00000001/thumbnail", 200, "image/jpeg", 5},
		{"/v1/frames/cam-1_9_99999999/jpeg", 404, "", 0},
		{"/v1/frames/..x/jpeg", 400, "", 0},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.code || (c.ctype != "" && (rec.Header().Get("Content-Type") != c.ctype || rec.Body.Len() != c.length)) {
			t.Errorf("GET %s = %d %s %d bytes", c.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
}

func TestAPIListEventsNewestFirst(t *testing.T) {
	a := testAPI(t)
	ctx := context.Background()
	list := func(newestFirst bool) []string {
		var ids []string
		tok := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("newest_first=%v: more than 10 pages of 1", newestFirst)
			}
			resp, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageSize: 1, PageToken: tok, NewestFirst: newestFirst})
			if err != nil {
				t.Fatalf("newest_first=%v: %v", newestFirst, err)
			}
			for _, e := range resp.GetEvents() {
				ids = append(ids, e.GetEventId())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				return ids
			}
		}
	}
	want := "[cam-2_9_e00000010 cam-1_9_e00000010 cam-2_9_e00000000 cam-1_9_e00000000]"
	if got := list(true); fmt.Sprint(got) != want {
		t.Fatalf("newest first = %v, want %v", got, want)
	}
	if got := list(false); fmt.Sprint(got) != "[cam-1_9_e00000000 cam-2_9_e00000000 cam-1_9_e00000010 cam-2_9_e00000010]" {
		t.Fatalf("oldest first = %v", got)
	}
	// A token of one order is refused by the other, naming page_token.
	asc, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageSize: 1, NewestFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageToken: asc.GetNextPageToken(), NewestFirst: true})
	wantInvalid(t, err, "page_token")
	_, err = a.ListEvents(ctx, &cefiotv1.ListEventsRequest{PageToken: desc.GetNextPageToken()})
	wantInvalid(t, err, "page_token")

	// Over REST: ?newest_first=true (and the JSON name newestFirst).
	gw := runtime.NewServeMux()
	if err := cefiotv1.RegisterSinkServiceHandlerServer(ctx, gw, a); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"newest_first=true", "newestFirst=true"} {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/events?camera_id=cam-1&"+q, nil))
		var resp cefiotv1.ListEventsResponse
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/events?%s = %d %s", q, rec.Code, rec.Body)
		}
		if err := protojson.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.GetEvents()) != 2 || resp.GetEvents()[0].GetEventId() != "cam-1_9_e00000010" {
			t.Fatalf("GET /v1/events?camera_id=cam-1&%s = %v", q, resp.GetEvents())
		}
	}
}
