package source

import (
	"context"
	"image"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	"github.com/cefiot/cefiot/services/capture/internal/videoio"
)

// pictureIndex tells which picture of spec img is (the rendered one it
// differs least from), among the first n.
func pictureIndex(t *testing.T, spec videogen.Spec, rendered []gocv.Mat, img gocv.Mat) int {
	t.Helper()
	if img.Cols() != spec.Width || img.Rows() != spec.Height {
		t.Fatalf("a %dx%d picture from the %dx%d stream", img.Cols(), img.Rows(), spec.Width, spec.Height)
	}
	return videogen.Nearest(rendered, img)
}

// waitForMainPicture waits until p's main stream has given a picture.
func waitForMainPicture(ctx context.Context, t *testing.T, p *Paired) {
	t.Helper()
	for {
		p.mu.Lock()
		written, changed := p.written, p.changed
		p.mu.Unlock()
		if written > 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("the main stream gave no picture")
		}
	}
}

// TestPairedStoresTheMainStreamsPictureOfTheSameMoment: a camera that
// sends its scene as a 640x360 main stream and a 320x180 sub-stream
// (H.264 over RTSP, picture for picture): the frames the detector gets are
// the sub-stream's, and the picture kept for each is the main stream's of
// the same moment (the same picture of the scene, or its neighbour), also
// with the detection rate capped: with the main stream kept undecoded and
// its pictures decoded only for the frames asked for (packets, the
// default), where each is the sub-stream picture's very moment, and with
// every main picture decoded into a ring (decoded, as with Intel Media
// SDK). When the main stream is not there, the
// sub-stream's picture is kept and counted.
func TestPairedStoresTheMainStreamsPictureOfTheSameMoment(t *testing.T) {
	if testing.Short() {
		t.Skip("a live RTSP camera for 10 s; skipped with -short")
	}
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 640, 360, 60, 15, 1, 59
	sub := spec
	sub.Width, sub.Height = 320, 180
	cam, err := rtsptest.New(spec, rtsptest.Options{Codec: rtsptest.CodecH264, SubStream: image.Pt(sub.Width, sub.Height)})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	mainPics := videogen.Scene(t, spec)
	subPics := make([]gocv.Mat, len(mainPics)) // the camera scales its pictures down
	for i, m := range mainPics {
		subPics[i] = gocv.NewMat()
		gocv.Resize(m, &subPics[i], image.Pt(sub.Width, sub.Height), 0, 0, gocv.InterpolationArea)
		defer subPics[i].Close()
	}

	if !pairedLazy(Options{}) || !pairedLazy(Options{Accel: videoio.AccelAny}) || !pairedLazy(Options{Accel: videoio.AccelVAAPI}) || pairedLazy(Options{Accel: videoio.AccelMFX}) {
		t.Fatal("the main stream is kept undecoded exactly when FFmpeg reads it directly (not through OpenCV, for Intel Media SDK)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, lazy := range []bool{true, false} {
		t.Run(map[bool]string{true: "packets", false: "decoded"}[lazy], func(t *testing.T) {
			pairedMoments(ctx, t, cam, spec, sub, mainPics, subPics, lazy)
		})
	}

	// A camera whose main stream is not there: the sub-stream's picture.
	lonely, err := OpenPaired(cam.SubURL(), "rtsp://127.0.0.1:1/none", Options{}, StreamOptions{MinBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lonely.Close() }()
	f, err := lonely.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pic := f.Picture(); pic.Cols() != sub.Width || lonely.Fallbacks() != 1 {
		t.Fatalf("without a main stream: a %d-wide picture kept, %d fallbacks", pic.Cols(), lonely.Fallbacks())
	}
}

func pairedMoments(ctx context.Context, t *testing.T, cam *rtsptest.Server, spec, sub videogen.Spec, mainPics, subPics []gocv.Mat, lazy bool) {
	p, err := openPaired(cam.SubURL(), cam.URL(), Options{}, StreamOptions{}, lazy)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	type pair struct{ sub, main gocv.Mat }
	var pairs []pair
	defer func() {
		for _, p := range pairs {
			p.sub.Close()
			p.main.Close()
		}
	}()
	// collect keeps the pictures of n frames, to be told apart later
	// (which takes longer than the camera's frame interval).
	collect := func(n int) {
		for i := 0; i < n; i++ {
			f, err := p.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Full == nil {
				t.Fatal("a two-stream camera's frame without its main picture")
			}
			full := f.Picture()
			pairs = append(pairs, pair{sub: f.Mat.Clone(), main: full.Clone()})
		}
	}
	check := func(name string, pairs []pair) {
		t.Helper()
		same, near := 0, 0
		for i, pr := range pairs {
			ks := pictureIndex(t, sub, subPics, pr.sub)
			km := pictureIndex(t, spec, mainPics, pr.main)
			switch d := (km - ks + spec.Frames) % spec.Frames; d {
			case 0:
				same++
			case 1, spec.Frames - 1:
				near++
			default:
				t.Errorf("%s: frame %d: the sub-stream's picture %d kept as the main stream's %d", name, i, ks, km)
			}
		}
		t.Logf("%s: %d of %d main pictures the sub-stream's own moment, %d its neighbour; decoder %s", name, same, len(pairs), near, p.Decoder())
		// Matched by the camera's clock, every picture is its moment's;
		// by the streams' times and likeness, nearly every one.
		if want := map[bool]int{true: len(pairs), false: len(pairs) * 9 / 10}[lazy]; same < want {
			t.Errorf("%s: only %d of %d main pictures of the sub-stream picture's own moment", name, same, len(pairs))
		}
	}
	// The detector starts once the main stream gives pictures (as a
	// detector slow to start does): the sub-stream's first connection is
	// made then, and the pictures FFmpeg buffered while it probed are read
	// past, not taken one by one at the stream's pace, which would leave
	// the detector as far behind the main stream for good.
	waitForMainPicture(ctx, t, p)
	// Until then, the sub-stream's pictures are kept.
	for matched := 0; matched < 10; {
		f, err := p.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.Full(); ok {
			matched++
		} else {
			matched = 0
		}
	}
	warmup := p.Fallbacks()
	t.Logf("the sub-stream's connection read past %d pictures buffered while FFmpeg probed it", p.detect.ReadPast())
	collect(45)
	p.SetMinInterval(200 * time.Millisecond)
	collect(15)
	check("every frame", pairs[:45])
	check("5 frames/s", pairs[45:])
	if n := p.Fallbacks() - warmup; n != 0 {
		t.Errorf("%d frames without a main picture while both streams ran", n)
	}
	p.mu.Lock()
	read := p.written
	p.mu.Unlock()
	t.Logf("main stream: %d pictures read, %d decoded for frames", read, p.MainDecoded())
	if lazy && p.MainDecoded() > int64(len(pairs)+10) {
		t.Errorf("%d main pictures decoded for %d frames and 10 matched at the start", p.MainDecoded(), len(pairs))
	}
}
