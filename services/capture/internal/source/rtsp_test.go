package source

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// retryWatch is a slog handler that signals each failed connection attempt
// of a Stream ("stream unavailable; retrying"), so a test can restart a
// camera right after the source found it down.
type retryWatch struct{ failed chan struct{} }

func (w retryWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w retryWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w retryWatch) WithGroup(string) slog.Handler            { return w }
func (w retryWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "stream unavailable") {
		select {
		case w.failed <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestStreamRTSP reads an RTSP camera served in the test (the sample video
// as Motion JPEG, H.264 or H.265 over RTP), stops the server, checks that the source reports
// offline and retries the dead camera, restarts the server, and checks that
// frames flow again within 10 s of it coming back (the reconnect target).
//
// Subtests cover the transports FFmpeg ends up using: RTP over UDP (its
// default), RTP interleaved in the RTSP TCP connection after the camera
// refuses UDP, and TCP chosen by the operator through
// OPENCV_FFMPEG_CAPTURE_OPTIONS.
func TestStreamRTSP(t *testing.T) {
	spec := smallSpec() // 320x240: RTP/JPEG needs multiples of 8
	spec.FPS = 25
	cases := []struct {
		name       string
		serverUDP  bool
		ffmpegOpts string // OPENCV_FFMPEG_CAPTURE_OPTIONS, "" to leave it alone
		transport  string // what the server must see in SETUP
	}{
		{name: "udp", serverUDP: true, transport: "UDP"},
		{name: "tcp_fallback", serverUDP: false, transport: "TCP"},
		{name: "tcp_forced", serverUDP: true, ffmpegOpts: "rtsp_transport;tcp|rw_timeout;2000000", transport: "TCP"},
	}
	for _, codec := range []string{rtsptest.CodecMJPEG, rtsptest.CodecH264, rtsptest.CodecH265} {
		t.Run(codec, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { testRTSPCase(t, spec, codec, tc.serverUDP, tc.ffmpegOpts, tc.transport) })
			}
		})
	}
}

// testRTSPCase serves spec in codec (over UDP too when serverUDP), reads
// it with FFmpeg given ffmpegOpts, and checks the transport and the
// reconnect.
func testRTSPCase(t *testing.T, spec videogen.Spec, codec string, serverUDP bool, ffmpegOpts, transport string) {
	if ffmpegOpts != "" {
		// OpenStream sets FFmpeg's options for the whole process the
		// first time, unless the environment has some: open a stream
		// first so that this subtest's options do not stay behind as
		// the process default once t.Setenv restores the variable.
		if s, err := OpenStream("rtsp://127.0.0.1:1/none", quietOptions(), StreamOptions{}); err == nil {
			s.Close()
		}
		t.Setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", ffmpegOpts)
	}
	srv, err := rtsptest.New(spec, rtsptest.Options{UDP: serverUDP, Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	testRTSPReconnect(t, srv, spec.Width, spec.Height, spec.FPS, transport)
}

func testRTSPReconnect(t *testing.T, srv *rtsptest.Server, width, height int, fps float64, transport string) {
	var log statusLog
	watch := retryWatch{failed: make(chan struct{}, 1)}
	opts := Options{Logger: slog.New(watch)}
	s, err := OpenStream(srv.URL(), opts, StreamOptions{OnStatus: log.record, IOTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	read := func(n int) uint64 {
		t.Helper()
		var last uint64
		for i := 0; i < n; i++ {
			f, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if f.Mat.Cols() != width || f.Mat.Rows() != height {
				t.Fatalf("frame %dx%d, want %dx%d", f.Mat.Cols(), f.Mat.Rows(), width, height)
			}
			last = f.Index
		}
		return last
	}
	opened := time.Now()
	first := read(10)
	t.Logf("10 frames in %v", time.Since(opened).Round(time.Millisecond))
	if got := srv.Transports(); !slices.Equal(got, []string{transport}) {
		t.Fatalf("SETUP transports %v, want [%s]", got, transport)
	}
	if !s.Online() {
		t.Fatal("not online while reading")
	}
	if got := s.FPS(); got <= 0 {
		t.Errorf("FPS = %v", got)
	}

	srv.Stop()
	// Next goes on until the closed session is noticed, then blocks
	// reconnecting; the camera comes back once the source has found it
	// down at least once.
	restarted := make(chan time.Time, 1)
	go func() {
		select {
		case <-watch.failed:
		case <-ctx.Done():
			return
		}
		if err := srv.Restart(); err != nil {
			t.Error(err)
			cancel()
			return
		}
		restarted <- time.Now()
	}()
	var back time.Time
	for {
		f, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next across the outage: %v", err)
		}
		if changes, _ := log.get(); len(changes) >= 3 && changes[len(changes)-1] {
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
	t.Logf("frames again %v after the camera came back; %d connection attempts; transports %v",
		took.Round(time.Millisecond), s.Attempts(), srv.Transports())
	if took > 10*time.Second {
		t.Errorf("producing again %v after the camera came back, want within 10s", took)
	}
	if s.Attempts() < 3 {
		t.Errorf("%d connection attempts, want the first, at least one refused, and the reconnect", s.Attempts())
	}
	if got := srv.Transports(); !slices.Equal(got, []string{transport, transport}) {
		t.Errorf("SETUP transports %v, want %s twice", got, transport)
	}
}
