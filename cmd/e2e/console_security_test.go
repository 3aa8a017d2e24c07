package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// TestConsoleRefusesStrangers attacks the console's listener as cefiot-local
// serves it: plain HTTP, no certificate, a certificate of an impostor CA
// and a worker's certificate are refused; a viewer may look but not act;
// an operator may act, but not through a page of another origin, a form or
// a foreign host name.
func TestConsoleRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	site, err := sitepki.Make(filepath.Join(dir, "edge"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := sitepki.Foreign(filepath.Join(dir, "impostor"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	// A target that answers every proxied call, to tell the console's
	// refusals from the target's.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer target.Close()
	load := func(s sitepki.Site, component string) *tlsx.Source {
		src, err := s.Load(component)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	srv, err := console.Start("127.0.0.1:0", []console.Target{{Name: "bridge", URL: target.URL}}, logging.Discard(),
		&console.Security{Server: load(site, access.Console), Client: tlsx.Sites{load(site, access.Console)}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("console URL %s is not HTTPS", srv.URL())
	}
	anonymous, err := site.AnonymousClient()
	if err != nil {
		t.Fatal(err)
	}
	action := srv.URL() + "api/bridge/v1/bridge/pause"
	operator := load(site, sitepki.Operator).HTTPClient()
	for _, tc := range []struct {
		who, method, url string
		client           *http.Client
		edit             func(*http.Request)
		want             int // 0: the handshake is refused
	}{
		{"no certificate", "GET", srv.URL(), anonymous, nil, 0},
		{"impostor CA", "GET", srv.URL(), load(impostor, sitepki.Operator).HTTPClient(), nil, 0},
		{"worker", "GET", srv.URL(), load(site, access.Worker("bridge")).HTTPClient(), nil, http.StatusForbidden},
		{"viewer looks", "GET", srv.URL(), load(site, sitepki.Viewer).HTTPClient(), nil, http.StatusOK},
		{"viewer acts", "POST", action, load(site, sitepki.Viewer).HTTPClient(), nil, http.StatusForbidden},
		{"operator acts", "POST", action, operator, nil, http.StatusOK},
		{"operator acts from the console's own page", "POST", action, operator, header("Origin", strings.TrimSuffix(srv.URL(), "/")), http.StatusOK},
		{"a page of another origin acts", "POST", action, operator, header("Origin", "https://evil.example"), http.StatusForbidden},
		{"a form acts", "POST", action, operator, header("Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType},
		{"a foreign host name (rebinding)", "POST", action, operator, func(r *http.Request) { r.Host = "evil.example" }, http.StatusMisdirectedRequest},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, tc.method, tc.url, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if tc.edit != nil {
			tc.edit(req)
		}
		resp, err := tc.client.Do(req)
		cancel()
		switch {
		case tc.want == 0 && err == nil:
			resp.Body.Close()
			t.Errorf("%s: HTTP %d, want the handshake refused", tc.who, resp.StatusCode)
		case tc.want != 0 && err != nil:
			t.Errorf("%s: %v", tc.who, err)
		case tc.want != 0:
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %s %s: HTTP %d, want %d", tc.who, tc.method, tc.url, resp.StatusCode, tc.want)
			}
		}
	}
	// Plain HTTP on the HTTPS port.
	if resp, err := http.Get("http://" + strings.TrimPrefix(srv.URL(), "https://")); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP got the console")
		}
	}
}

// header sets one request header.
func header(key, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(key, value) }
}
