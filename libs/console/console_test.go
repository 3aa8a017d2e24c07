package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyAndAssets(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	}))
	defer backend.Close()
	h, err := New([]Target{{Name: "sink", URL: backend.URL}, {Name: "scheduler-edge", URL: backend.URL + "/"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code, body := get(t, srv.URL+"/api/sink/v1/frames?camera_id=cam-1"); code != 200 || body != "GET /v1/frames?camera_id=cam-1" {
		t.Errorf("proxied GET = %d %q", code, body)
	}
	resp, err := http.Post(srv.URL+"/api/scheduler-edge/v1/nodes/n1/drain", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /v1/nodes/n1/drain?" {
		t.Errorf("proxied POST = %q", b)
	}
	if code, body := get(t, srv.URL+"/api/nope/v1/frames"); code != 404 || !strings.Contains(body, `no target \"nope\"`) {
		t.Errorf("unknown target = %d %s", code, body)
	}
	if code, _ := get(t, srv.URL+"/api/sink/metrics"); code != 404 {
		t.Errorf("non-API path proxied: %d", code)
	}
	code, body := get(t, srv.URL+"/api/targets")
	var tl struct{ Targets []Target }
	if err := json.Unmarshal([]byte(body), &tl); code != 200 || err != nil || len(tl.Targets) != 2 || tl.Targets[0].Name != "scheduler-edge" {
		t.Errorf("targets = %d %s (%v)", code, body, err)
	}
	for path, want := range map[string]string{"/": "<title>cefiot console</title>", "/app.js": "EventSource", "/style.css": ".graph"} {
		if code, body := get(t, srv.URL+path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want it to contain %q", path, code, want)
		}
	}
}

func TestUnreachableTargetIsGatewayError(t *testing.T) {
	h, err := New([]Target{{Name: "bridge", URL: "http://127.0.0.1:1"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, body := get(t, srv.URL+"/api/bridge/v1/bridge/status")
	if code != http.StatusBadGateway || !strings.Contains(body, "bridge unreachable") {
		t.Errorf("got %d %s", code, body)
	}
}

func TestBadTargets(t *testing.T) {
	for _, tc := range []struct {
		targets []Target
		want    string
	}{
		{[]Target{{Name: "", URL: "http://x:1"}}, "non-empty"},
		{[]Target{{Name: "a/b", URL: "http://x:1"}}, "without /"},
		{[]Target{{Name: "a", URL: "x:1"}}, "want http://host:port"},
		{[]Target{{Name: "a", URL: "http://x:1"}, {Name: "a", URL: "http://x:2"}}, "given twice"},
	} {
		if _, err := New(tc.targets, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want error containing %q", tc.targets, err, tc.want)
		}
	}
}
