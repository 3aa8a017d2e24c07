package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// smallSpec is a quick video: 40 frames, motion in 10..19.
func smallSpec() videogen.Spec {
	s := videogen.DefaultSpec()
	s.Width, s.Height, s.Frames, s.MotionStart, s.MotionEnd = 320, 240, 40, 10, 19
	return s
}

func writeVideo(t testing.TB, spec videogen.Spec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sample.avi")
	if err := videogen.Write(path, spec); err != nil {
		t.Fatal(err)
	}
	return path
}

func quietOptions() Options {
	return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// readAll drains src and returns the frames' indexes and names.
func readAll(t *testing.T, src Source, wantW, wantH int) (indexes []uint64, names []string) {
	t.Helper()
	ctx := context.Background()
	for {
		f, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(indexes), err)
		}
		if f.Mat.Cols() != wantW || f.Mat.Rows() != wantH || f.Mat.Channels() != 3 {
			t.Fatalf("frame %d is %dx%dx%d, want %dx%dx3", f.Index, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Channels(), wantW, wantH)
		}
		if f.CaptureTime.IsZero() {
			t.Fatalf("frame %d has no capture time", f.Index)
		}
		indexes = append(indexes, f.Index)
		names = append(names, f.Name)
	}
	// EOF is sticky.
	if _, err := src.Next(ctx); err != io.EOF {
		t.Fatalf("Next after EOF = %v, want io.EOF", err)
	}
	return indexes, names
}

func checkSequential(t *testing.T, indexes []uint64, n int) {
	t.Helper()
	if len(indexes) != n {
		t.Fatalf("read %d frames, want %d", len(indexes), n)
	}
	for i, idx := range indexes {
		if idx != uint64(i) {
			t.Fatalf("frame %d has index %d", i, idx)
		}
	}
}

func TestVideoFile(t *testing.T) {
	spec := videogen.DefaultSpec()
	path := writeVideo(t, spec)
	v, err := OpenVideoFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if w, h := v.Size(); w != spec.Width || h != spec.Height {
		t.Errorf("Size = %dx%d, want %dx%d", w, h, spec.Width, spec.Height)
	}
	if v.FPS() != spec.FPS || v.DeclaredFrames() != spec.Frames {
		t.Errorf("FPS, DeclaredFrames = %v, %d, want %v, %d", v.FPS(), v.DeclaredFrames(), spec.FPS, spec.Frames)
	}
	if d := v.Describe(); !strings.Contains(d, path) || !strings.Contains(d, "MJPG decoded by software") {
		t.Errorf("Describe() = %q, want the path, the codec and the decoder", d)
	}
	indexes, _ := readAll(t, v, spec.Width, spec.Height)
	checkSequential(t, indexes, spec.Frames)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := v.Next(context.Background()); err == nil || err == io.EOF {
		t.Fatalf("Next after Close = %v, want an error", err)
	}
}

func TestVideoFileOffset(t *testing.T) {
	v, err := OpenVideoFile(writeVideo(t, smallSpec()), Options{FPS: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := 0; i < 3; i++ {
		f, err := v.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Duration(i) * 100 * time.Millisecond; f.Offset != want {
			t.Errorf("frame %d: Offset = %v, want %v", i, f.Offset, want)
		}
	}
}

func TestOpenVideoFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeVideo(t, smallSpec())
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, reason string
	}{
		{"missing", filepath.Join(dir, "nope.avi"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"empty", write("empty.avi", nil), "empty"},
		{"garbage", write("garbage.avi", bytes.Repeat([]byte("not a video "), 5000)), "cannot open"},
		{"header only", write("header.avi", data[:2048]), "OpenCV"},
		{"text as avi", write("notes.avi", []byte("hello\n")), "OpenCV"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := OpenVideoFile(c.path, Options{})
			if err == nil {
				v.Close()
				t.Fatalf("OpenVideoFile succeeded")
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %q does not name the path and %q", err, c.reason)
			}
		})
	}
	if _, err := OpenVideoFile(filepath.Join(dir, "nope.avi"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v does not wrap fs.ErrNotExist", err)
	}
}

// TestVideoFileTruncated reads a video cut in the middle of a frame: it
// must end with io.EOF after fewer frames, not crash or hang.
func TestVideoFileTruncated(t *testing.T) {
	spec := smallSpec()
	data, err := os.ReadFile(writeVideo(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.avi")
	if err := os.WriteFile(path, data[:len(data)/2+777], 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := OpenVideoFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	indexes, _ := readAll(t, v, spec.Width, spec.Height)
	if len(indexes) == 0 || len(indexes) >= spec.Frames {
		t.Fatalf("read %d frames from a half file of %d frames", len(indexes), spec.Frames)
	}
	t.Logf("truncated file: %d of %d frames, %d declared", len(indexes), spec.Frames, v.DeclaredFrames())
}

func TestImageDir(t *testing.T) {
	spec := smallSpec()
	dir := t.TempDir()
	if err := videogen.WriteImages(dir, spec); err != nil {
		t.Fatal(err)
	}
	// Two non-images, a hidden file and a sub-folder.
	for name, content := range map[string]string{
		"README.txt":                "not an image",
		videogen.ImageName(5) + "x": "broken jpeg",
		".hidden.jpg":               "ignored",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	d, err := OpenImageDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	indexes, names := readAll(t, d, spec.Width, spec.Height)
	checkSequential(t, indexes, spec.Frames)
	for i, n := range names {
		if n != videogen.ImageName(i) {
			t.Fatalf("frame %d is %s, want %s", i, n, videogen.ImageName(i))
		}
	}
	if d.Skipped() != 2 {
		t.Errorf("Skipped = %d, want 2", d.Skipped())
	}
	if got := strings.Count(logs.String(), "level=WARN"); got != 2 {
		t.Errorf("%d warnings logged, want 2:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "README.txt") {
		t.Errorf("warning does not name the skipped file:\n%s", logs.String())
	}
	if desc := d.Describe(); !strings.Contains(desc, dir) {
		t.Errorf("Describe() = %q, want the folder", desc)
	}
}

func TestOpenImageDirErrors(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	junk := filepath.Join(root, "junk")
	for _, d := range []string{empty, junk} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(junk, "a.jpg"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, reason string }{
		{filepath.Join(root, "missing"), "no such file"},
		{empty, "no files"},
		{junk, "none of its 1 files"},
	}
	for _, c := range cases {
		d, err := OpenImageDir(c.path, quietOptions())
		if err == nil {
			d.Close()
			t.Errorf("%s: OpenImageDir succeeded", c.path)
			continue
		}
		if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("error %q does not name %s and %q", err, c.path, c.reason)
		}
	}
}

func TestOpenDispatches(t *testing.T) {
	spec := smallSpec()
	video := writeVideo(t, spec)
	dir := t.TempDir()
	if err := videogen.WriteImages(dir, spec); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{video: "video file", dir: "image folder"} {
		src, err := Open(path, Options{}, StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(src.Describe(), want) {
			t.Errorf("Open(%s).Describe() = %q, want prefix %q", path, src.Describe(), want)
		}
		src.Close()
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{}, StreamOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Open(video, Options{FPS: -1}, StreamOptions{}); err == nil || !strings.Contains(err.Error(), "FPS") {
		t.Errorf("Open with FPS -1 = %v, want an error naming FPS", err)
	}
}

func TestRealtimePacing(t *testing.T) {
	path := writeVideo(t, smallSpec())
	const fps, n = 50.0, 6
	run := func(realtime bool) time.Duration {
		v, err := OpenVideoFile(path, Options{Realtime: realtime, FPS: fps})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := v.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start)
	}
	want := time.Duration(n-1) * time.Second / fps // 100ms
	if got := run(true); got < want {
		t.Errorf("real time: %d frames took %v, want >= %v", n, got, want)
	}
	if got := run(false); got >= want {
		t.Errorf("unpaced: %d frames took %v, want < %v", n, got, want)
	}
}

func TestNextHonoursContext(t *testing.T) {
	v, err := OpenVideoFile(writeVideo(t, smallSpec()), Options{Realtime: true, FPS: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if f, err := v.Next(ctx); err != nil || f.Index != 0 {
		t.Fatalf("first Next = %d, %v", f.Index, err)
	}
	// Frame 1 is due in a second; the deadline ends the wait first.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := v.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next while pacing = %v, want DeadlineExceeded", err)
	}
	cancel()
	if _, err := v.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context = %v, want Canceled", err)
	}
	// The frame interrupted by the deadline is not lost.
	v.opts.Realtime, v.pace.enabled = false, false
	if f, err := v.Next(context.Background()); err != nil || f.Index != 1 {
		t.Fatalf("Next after the interruption = frame %d, %v; want frame 1", f.Index, err)
	}
}

func TestSessionEpoch(t *testing.T) {
	spec := videogen.DefaultSpec()
	path := writeVideo(t, spec)
	e1, err := SessionEpoch(path)
	if err != nil {
		t.Fatal(err)
	}
	if e1 == 0 || e1>>63 != 0 {
		t.Fatalf("epoch %#x: want non-zero with the top bit clear", e1)
	}
	e2, err := SessionEpoch(path)
	if err != nil || e2 != e1 {
		t.Fatalf("second SessionEpoch = %#x, %v; want %#x", e2, err, e1)
	}

	// A renamed copy with a new mtime is the same footage.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.avi")
	if err := os.WriteFile(cp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(cp, future, future); err != nil {
		t.Fatal(err)
	}
	if e, err := SessionEpoch(cp); err != nil || e != e1 {
		t.Errorf("copy: SessionEpoch = %#x, %v; want %#x", e, err, e1)
	}

	// Different content is a different session.
	data[len(data)-1] ^= 0xff
	changed := filepath.Join(t.TempDir(), "changed.avi")
	if err := os.WriteFile(changed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := SessionEpoch(changed); err != nil || e == e1 {
		t.Errorf("changed file: SessionEpoch = %#x, %v; want != %#x", e, err, e1)
	}
	other := smallSpec()
	if e, err := SessionEpoch(writeVideo(t, other)); err != nil || e == e1 {
		t.Errorf("other video: SessionEpoch = %#x, %v; want != %#x", e, err, e1)
	}

	if _, err := SessionEpoch(filepath.Join(t.TempDir(), "missing.avi")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestSessionEpochDir(t *testing.T) {
	spec := smallSpec()
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := videogen.WriteImages(d, spec); err != nil {
			t.Fatal(err)
		}
	}
	ea, err := SessionEpoch(a)
	if err != nil {
		t.Fatal(err)
	}
	if eb, err := SessionEpoch(b); err != nil || eb != ea {
		t.Fatalf("same images in two folders: %#x, %v; want %#x", eb, err, ea)
	}
	if err := os.Remove(filepath.Join(b, videogen.ImageName(3))); err != nil {
		t.Fatal(err)
	}
	if eb, err := SessionEpoch(b); err != nil || eb == ea {
		t.Fatalf("folder with a frame removed: %#x, %v; want != %#x", eb, err, ea)
	}
}

// TestVideoFileCorrupt overwrites the middle of a video with garbage:
// reading must go on or stop with io.EOF, never crash or hang.
func TestVideoFileCorrupt(t *testing.T) {
	spec := smallSpec()
	data, err := os.ReadFile(writeVideo(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+20000; i++ {
		data[i] = byte(i * 131)
	}
	path := filepath.Join(t.TempDir(), "corrupt.avi")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := OpenVideoFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	indexes, _ := readAll(t, v, spec.Width, spec.Height)
	if len(indexes) == 0 || len(indexes) > spec.Frames {
		t.Fatalf("read %d frames of %d", len(indexes), spec.Frames)
	}
	t.Logf("corrupt file: %d of %d frames", len(indexes), spec.Frames)
}

// TestVideoFileDecoder: a video opened with any acceleration decodes on a
// machine without a GPU, in software, and says so; one that requires VAAPI
// there is refused at open, the error naming the missing accelerator.
func TestVideoFileDecoder(t *testing.T) {
	if m, _ := filepath.Glob("/dev/dri/renderD*"); len(m) > 0 {
		t.Skip("this machine has a GPU render node")
	}
	spec := videogen.DefaultSpec()
	path := writeVideo(t, spec)
	v, err := OpenVideoFile(path, Options{Accel: videoio.AccelAny})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Decoder() != "software" {
		t.Fatalf("decoder %q on a machine without a GPU", v.Decoder())
	}
	indexes, _ := readAll(t, v, spec.Width, spec.Height)
	checkSequential(t, indexes, spec.Frames)
	if _, err := OpenVideoFile(path, Options{Accel: videoio.AccelVAAPI}); err == nil || !strings.Contains(err.Error(), "hardware decoding vaapi is not available") {
		t.Fatalf("VAAPI required without a GPU: %v", err)
	}
}
