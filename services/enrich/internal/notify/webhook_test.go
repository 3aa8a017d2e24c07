package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/pki"
)

func tlsTrusting(srv *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func TestWebhookSignsAndClassifiesAnswers(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusNoContent)
	var got atomic.Pointer[http.Request]
	var body atomic.Pointer[[]byte]
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r)
		body.Store(&b)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	wh := NewWebhook(srv.URL+"/hook?token=s3cret", tlsTrusting(srv), "key")
	if strings.Contains(wh.Name(), "s3cret") {
		t.Fatalf("name %q shows the URL's token", wh.Name())
	}
	ev := Event{Type: TypeNew, EventID: "door_1_e00000001", Site: "edge", Camera: "door", StartTime: time.Now().UTC(), Labels: []string{}}
	ctx := context.Background()
	if err := wh.Send(ctx, ev); err != nil {
		t.Fatalf("send: %v", err)
	}
	r, b := got.Load(), *body.Load()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %q", r.Method, r.Header.Get("Content-Type"))
	}
	if sig := r.Header.Get(HeaderSignature); sig != Sign([]byte("key"), b) {
		t.Fatalf("signature %q does not match the body", sig)
	}
	if d := r.Header.Get(HeaderDelivery); d != "door_1_e00000001:new" {
		t.Fatalf("delivery id %q", d)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.EventID != ev.EventID || back.Type != TypeNew {
		t.Fatalf("body %s: %v", b, err)
	}
	for code, permanent := range map[int]bool{500: false, 503: false, 429: false, 408: false, 400: true, 401: true, 404: true, 302: true} {
		status.Store(int32(code))
		err := wh.Send(ctx, ev)
		var perm *PermanentError
		if err == nil || errors.As(err, &perm) != permanent {
			t.Errorf("answer %d: err %v, want permanent=%v", code, err, permanent)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("answer %d: error %q shows the token", code, err)
		}
	}
}

func TestWebhookRefusesAServerOutsideItsRoots(t *testing.T) {
	var hits atomic.Int32
	// The receiver shows a certificate of a CA of its own; the webhook
	// trusts only httptest's.
	ca, err := pki.NewCA("foreign", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue("hook", []string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	trusted := httptest.NewTLSServer(http.NotFoundHandler())
	defer trusted.Close()
	wh := NewWebhook(srv.URL+"/?token=s3cret", tlsTrusting(trusted), "")
	err = wh.Send(context.Background(), Event{Type: TypeNew, EventID: "e"})
	if err == nil || hits.Load() != 0 {
		t.Fatalf("delivered to a server whose certificate is not trusted (err %v, hits %d)", err, hits.Load())
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %q shows the token", err)
	}
}
