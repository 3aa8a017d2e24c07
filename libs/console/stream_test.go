package console

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeSite is a scheduler and one capture worker answering canned REST
// calls; its watch stream sends a line whenever change is signalled.
type fakeSite struct {
	scheduler, capture *httptest.Server
	change             chan struct{}
	watchEnded         chan struct{}
	node               string
}

func newFakeSite(t *testing.T, site string) *fakeSite {
	t.Helper()
	f := &fakeSite{change: make(chan struct{}), watchEnded: make(chan struct{}, 16), node: "node-1"}
	f.capture = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/capture/status":
			_, _ = io.WriteString(w, `{"status":{"counters":{"frames":"42"}}}`)
		case "/v1/cameras":
			_, _ = io.WriteString(w, `{"cameras":[{"cameraId":"cam-1","state":{"online":true,"measuredFps":25}}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.capture.Close)
	captureHost := strings.TrimPrefix(f.capture.URL, "http://")
	f.scheduler = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/leader":
			_, _ = io.WriteString(w, `{"leaderId":"sched-a","site":"`+site+`"}`)
		case "/v1/nodes":
			_, _ = io.WriteString(w, `{"nodes":[{"name":"node-1"}]}`)
		case "/v1/workers":
			_, _ = io.WriteString(w, `{"workers":[{"id":"w1","node":"node-1","kinds":["capture"],"adminHttpAddress":"`+captureHost+`"}]}`)
		case "/v1/workloads":
			_, _ = io.WriteString(w, `{"workloads":[{"name":"capture:cam-1","kind":"capture"},{"name":"sink","kind":"sink"}]}`)
		case "/v1/assignments":
			_, _ = io.WriteString(w, `{"assignments":[{"workload":"capture:cam-1","workerId":"w1","node":"`+f.node+`"}]}`)
		case "/v1/workloads/capture:cam-1":
			_, _ = io.WriteString(w, `{"workload":{"name":"capture:cam-1","kind":"capture"}}`)
		case "/v1/assignments/watch":
			defer func() { f.watchEnded <- struct{}{} }()
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-f.change:
					_, _ = io.WriteString(w, `{"result":{}}`+"\n")
					_ = rc.Flush()
				}
			}
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":5,"message":"workload not found"}`)
		}
	}))
	t.Cleanup(f.scheduler.Close)
	return f
}

func (f *fakeSite) targets() []Target {
	return []Target{{Name: "scheduler-edge", URL: f.scheduler.URL}, {Name: "capture", URL: f.capture.URL}, {Name: "unused", URL: "http://127.0.0.1:1"}}
}

// readSnapshots follows /api/stream and sends each snapshot.
func readSnapshots(ctx context.Context, t *testing.T, streamURL string) <-chan Snapshot {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	out := make(chan Snapshot, 16)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "snapshot":
				var s Snapshot
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s); err != nil {
					t.Errorf("snapshot is not JSON: %v", err)
					return
				}
				out <- s
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan Snapshot) Snapshot {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no snapshot within 30 s")
	}
	return Snapshot{}
}

func TestStreamSendsSnapshotsAndFollowsTheWatch(t *testing.T) {
	f := newFakeSite(t, "edge")
	h, err := New(f.targets(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// No timed snapshots: after the first, only a watch event brings one.
	h.collector.interval = time.Hour
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	snaps := readSnapshots(ctx, t, srv.URL+"/api/stream")
	s := next(t, snaps)
	if len(s.Sites) != 1 || s.Sites[0].Site != "edge" || s.Sites[0].Scheduler != "scheduler-edge" || s.Sites[0].Leader != "sched-a" {
		t.Fatalf("sites = %+v", s.Sites)
	}
	if !strings.Contains(string(s.Sites[0].Assignments), `"node":"node-1"`) {
		t.Errorf("assignments = %s", s.Sites[0].Assignments)
	}
	cap := s.Services["capture"]
	if cap == nil || cap.Kind != "capture" || !strings.Contains(string(cap.Status), `"frames":"42"`) || !strings.Contains(string(cap.Cameras), `"measuredFps":25`) {
		t.Fatalf("capture service = %+v", cap)
	}
	if _, ok := s.Services["unused"]; ok {
		t.Error("a target that is no site's worker is in the snapshot")
	}

	f.node = "node-2"
	f.change <- struct{}{}
	s2 := next(t, snaps)
	if s2.Seq <= s.Seq || !strings.Contains(string(s2.Sites[0].Assignments), `"node":"node-2"`) {
		t.Fatalf("after the watch event: seq %d (was %d), assignments %s", s2.Seq, s.Seq, s2.Sites[0].Assignments)
	}

	// The last page leaves: the collector stops following the scheduler.
	cancel()
	select {
	case <-f.watchEnded:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch stream stayed open after the last page left")
	}
}

func TestSiteMoveRefusals(t *testing.T) {
	f := newFakeSite(t, "edge")
	h, err := New(f.targets(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		body     string
		code     int
		contains string
	}{
		{`{"workload":"enrich","to":"cloud"}`, 400, "site: required"},
		{`{"site":"edge","to":"cloud"}`, 400, "workload: required"},
		{`{"site":"edge","workload":"enrich"}`, 400, "to: required"},
		{`{"site":"edge","workload":"enrich","to":"cloud","x":1}`, 400, "body:"},
		{`{"site":"nowhere","workload":"enrich","to":"edge"}`, 400, `site: no scheduler of site \"nowhere\"`},
		{`{"site":"edge","workload":"enrich","to":"cloud"}`, 404, "workload not found"},
		{`{"site":"edge","workload":"capture:cam-1","to":"cloud"}`, 400, `to: no scheduler of site \"cloud\"`},
	} {
		resp, err := http.Post(srv.URL+"/api/site-move", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.contains) {
			t.Errorf("POST %s = %d %s, want %d containing %q", tc.body, resp.StatusCode, b, tc.code, tc.contains)
		}
	}
}

func TestSiteMoveOfAWorkloadThatCannotLeave(t *testing.T) {
	edge, cloud := newFakeSite(t, "edge"), newFakeSite(t, "cloud")
	h, err := New([]Target{{Name: "scheduler-edge", URL: edge.scheduler.URL}, {Name: "scheduler-cloud", URL: cloud.scheduler.URL}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/site-move", "application/json", strings.NewReader(`{"site":"edge","workload":"capture:cam-1","to":"cloud"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Code    int
		Message string
	}
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != http.StatusBadRequest || e.Code != 9 || !strings.Contains(e.Message, "only enrich can move between sites") {
		t.Errorf("moving capture = %d %s, want 400 FailedPrecondition naming the rule", resp.StatusCode, b)
	}
}

func TestGatewayErrorKeepsTheCode(t *testing.T) {
	err := gatewayError(404, []byte(`{"code":5,"message":"workload \"x\" not found"}`))
	if got := toAPIError(err); got.Code != 5 || got.Message != `workload "x" not found` {
		t.Errorf("toAPIError = %+v", got)
	}
	if got := toAPIError(gatewayError(502, []byte("bad gateway"))); got.Code != 2 || !strings.Contains(got.Message, "HTTP 502: bad gateway") {
		t.Errorf("non-JSON error = %+v", got)
	}
}

// TestStreamAsksSinkReplicas: sinks that share a PostgreSQL index register
// with no scheduler; the console still asks every sink target for its
// stats and the sites it hears from.
func TestStreamAsksSinkReplicas(t *testing.T) {
	f := newFakeSite(t, "edge")
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/sink/status":
			_, _ = io.WriteString(w, `{"status":{"counters":{"stored":"7"}}}`)
		case "/v1/stats":
			_, _ = io.WriteString(w, `{"frames":"7"}`)
		case "/v1/sites":
			_, _ = io.WriteString(w, `{"sites":[{"site":"edge"}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer sink.Close()
	h, err := New(append(f.targets(), Target{Name: "sink-2", URL: sink.URL}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := next(t, readSnapshots(ctx, t, srv.URL+"/api/stream"))
	st := s.Services["sink-2"]
	if st == nil || st.Kind != "sink" || st.Error != "" || !strings.Contains(string(st.Sites), `"edge"`) || !strings.Contains(string(st.Stats), `"7"`) {
		t.Fatalf("sink replica in the snapshot: %+v", st)
	}
}
