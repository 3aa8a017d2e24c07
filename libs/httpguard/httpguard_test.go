package httpguard

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	hosts := func() []string { return []string{"localhost", "127.0.0.1", "*.kafka-headless.cefiot-edge.svc", "::1"} }
	for _, tc := range []struct {
		name               string
		tls                bool
		method, host, body string
		contentType        string
		origin, fetchSite  string
		want               int
	}{
		{name: "a read", method: "GET", host: "127.0.0.1:8100", want: 204},
		{name: "a read under a foreign name, plaintext (rebinding)", method: "GET", host: "evil.example:8100", want: 421},
		{name: "a read under a pod address behind TLS (a probe)", tls: true, method: "GET", host: "10.1.2.3:8100", want: 204},
		{name: "curl posts JSON", method: "POST", host: "localhost:8100", body: "{}", contentType: "application/json", want: 204},
		{name: "curl posts JSON with a charset", method: "POST", host: "localhost:8100", body: "{}", contentType: "application/json; charset=utf-8", want: 204},
		{name: "a body-less POST", method: "POST", host: "localhost:8100", want: 204},
		{name: "a form", method: "POST", host: "localhost:8100", body: "a=b", contentType: "application/x-www-form-urlencoded", want: 415},
		{name: "text/plain JSON", method: "PATCH", host: "localhost:8100", body: "{}", contentType: "text/plain", want: 415},
		{name: "no content type", method: "PUT", host: "localhost:8100", body: "{}", want: 415},
		{name: "same origin", tls: true, method: "POST", host: "localhost:8100", body: "{}", contentType: "application/json", origin: "https://localhost:8100", fetchSite: "same-origin", want: 204},
		{name: "another origin", tls: true, method: "POST", host: "localhost:8100", body: "{}", contentType: "application/json", origin: "https://evil.example", want: 403},
		{name: "another port", tls: true, method: "POST", host: "localhost:8100", origin: "https://localhost:9999", want: 403},
		{name: "plain http origin to https", tls: true, method: "POST", host: "localhost:8100", origin: "http://localhost:8100", want: 403},
		{name: "null origin", tls: true, method: "DELETE", host: "localhost:8100", origin: "null", want: 403},
		{name: "cross-site fetch without Origin", tls: true, method: "POST", host: "localhost:8100", fetchSite: "cross-site", want: 403},
		{name: "a change under a foreign name behind TLS", tls: true, method: "POST", host: "evil.example", want: 421},
		{name: "a wildcard name", tls: true, method: "POST", host: "kafka-0.kafka-headless.cefiot-edge.svc:9092", want: 204},
		{name: "a wildcard covers one label only", tls: true, method: "POST", host: "a.kafka-0.kafka-headless.cefiot-edge.svc", want: 421},
		{name: "IPv6 literal", method: "POST", host: "[::1]:8100", want: 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			var r *http.Request
			if body != nil {
				r = httptest.NewRequest(tc.method, "/v1/x", body)
			} else {
				r = httptest.NewRequest(tc.method, "/v1/x", nil)
			}
			r.Host = tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			w := httptest.NewRecorder()
			Guard{Hosts: hosts, TLS: tc.tls}.Wrap(ok).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("got %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
		})
	}
}
