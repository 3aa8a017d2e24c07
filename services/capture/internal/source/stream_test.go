package source

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/mjpegtest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/libs/redact"
)

type statusLog struct {
	mu      sync.Mutex
	changes []bool
	reasons []string
}

func (l *statusLog) record(online bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, online)
	l.reasons = append(l.reasons, reason)
}

func (l *statusLog) get() ([]bool, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.changes...), append([]string(nil), l.reasons...)
}

// TestStreamReconnects reads an HTTP MJPEG stream, stops the server (the
// camera goes away), restarts it, and checks that the stream reports
// offline then online and delivers frames again within 10 s of the server
// coming back.
func TestStreamReconnects(t *testing.T) {
	spec := smallSpec()
	spec.FPS = 25
	srv, err := mjpegtest.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var log statusLog
	s, err := OpenStream(srv.URL(), quietOptions(), StreamOptions{OnStatus: log.record, IOTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	read := func(n int) uint64 {
		t.Helper()
		var last uint64
		for i := 0; i < n; i++ {
			f, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if f.Mat.Cols() != spec.Width || f.Mat.Rows() != spec.Height {
				t.Fatalf("frame %dx%d", f.Mat.Cols(), f.Mat.Rows())
			}
			last = f.Index
		}
		return last
	}
	first := read(10)
	if !s.Online() {
		t.Fatal("not online while reading")
	}
	srv.Stop()
	// Reading goes on until the dropped connection is noticed; then Next
	// blocks reconnecting. Restart the server after a pause.
	restarted := make(chan time.Time, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if err := srv.Restart(spec.FPS); err != nil {
			t.Error(err)
		}
		restarted <- time.Now()
	}()
	var back time.Time
	for {
		f, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next across the outage: %v", err)
		}
		if changes, _ := log.get(); len(changes) >= 3 && !changes[len(changes)-1] {
			continue
		}
		if changes, _ := log.get(); len(changes) >= 3 {
			back = time.Now()
			if f.Index <= first {
				t.Fatalf("index went back: %d after %d", f.Index, first)
			}
			break
		}
	}
	changes, reasons := log.get()
	if len(changes) != 3 || !changes[0] || changes[1] || !changes[2] || reasons[1] == "" {
		t.Fatalf("status changes %v %q, want online, offline (with a reason), online", changes, reasons)
	}
	read(5)
	took := back.Sub(<-restarted)
	t.Logf("frames again %v after the server came back; %d connection attempts", took.Round(time.Millisecond), s.Attempts())
	if took > 10*time.Second {
		t.Errorf("producing again %v after the source came back, want within 10s", took)
	}
	if !strings.Contains(s.Describe(), "online") {
		t.Errorf("Describe = %q", s.Describe())
	}
}

// TestStreamNeverAnswers: a URL where nothing listens reports offline with
// a reason and keeps retrying until the context ends, without an error of
// its own.
func TestStreamNeverAnswers(t *testing.T) {
	var log statusLog
	s, err := OpenStream("http://127.0.0.1:1/none.mjpg", quietOptions(), StreamOptions{OnStatus: log.record, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Next = %v, want the context's error", err)
	}
	_, reasons := log.get()
	if len(reasons) != 1 || !strings.Contains(reasons[0], "does not answer") || s.Attempts() < 3 {
		t.Fatalf("reasons %q after %d attempts", reasons, s.Attempts())
	}
}

func TestStreamRedactsAndRejects(t *testing.T) {
	if got := redact.URL("rtsp://admin:secret@10.0.0.5:554/h264"); strings.Contains(got, "secret") || !strings.Contains(got, "admin") {
		t.Errorf("Redact = %q", got)
	}
	if _, err := OpenStream("/tmp/not-a-stream.avi", Options{}, StreamOptions{}); err == nil {
		t.Error("a file was accepted as a stream")
	}
	// No V4L2 device exists here: the device source reports why, offline.
	var log statusLog
	s, err := OpenStream("/dev/video99", quietOptions(), StreamOptions{OnStatus: log.record, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); err == nil {
		t.Fatal("a missing device delivered a frame")
	}
	if _, reasons := log.get(); len(reasons) == 0 || !strings.Contains(reasons[0], "/dev/video99") {
		t.Fatalf("reasons %q", reasons)
	}
}

var _ = videogen.DefaultSpec
