package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Profiles are served; the command line, which may carry a secret passed
// as a flag, is not.
func TestProfilesButNotTheCommandLine(t *testing.T) {
	args := os.Args
	os.Args = append(append([]string(nil), args...), "-s3-secret-key", "hunter2")
	t.Cleanup(func() { os.Args = args })
	srv, err := New(Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	}()
	get := func(path string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + srv.HTTPAddr() + path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code, _ := get("/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("profile index: HTTP %d", code)
	}
	if code, body := get("/debug/pprof/cmdline"); code != http.StatusNotFound || strings.Contains(body, "hunter2") {
		t.Fatalf("cmdline: HTTP %d %q, want 404 without the arguments", code, body)
	}
}
