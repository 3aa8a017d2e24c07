package avread

import (
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/rtsptest"
	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// timedPicture is a picture a reader decoded: the camera's time of it and
// which picture of the scene it shows.
type timedPicture struct {
	at    time.Time
	scene int
}

// readTimed reads an RTSP stream for d and returns the pictures that came
// with the camera's time, and how many came without.
func readTimed(t *testing.T, url string, d time.Duration, pics []gocv.Mat) (timed []timedPicture, untimed int, err error) {
	r, err := Open(url, Config{Options: map[string]string{"rw_timeout": "5000000"}})
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	m := gocv.NewMat()
	defer m.Close()
	for end := time.Now().Add(d); time.Now().Before(end); {
		if !r.Read(&m) {
			t.Error("the stream ended while the camera was sending")
			return timed, untimed, nil
		}
		at, ok := r.ProducerTime()
		if !ok {
			untimed++
			continue
		}
		timed = append(timed, timedPicture{at: at, scene: videogen.Nearest(pics, m)})
	}
	return timed, untimed, nil
}

// TestTwoReadersGiveEachPictureTheCamerasTime: a camera whose RTCP
// sender reports give its wall clock (H.264, H.265 and Motion JPEG), read
// by two readers that connect 1.5 s apart, for 11 s (past the test
// server library's own first report, which it drops: see rtsptest). Every picture a reader times is
// the picture the camera sent at that time (by the camera's own record,
// and by what the picture shows), and the two readers give the pictures
// they both read the same time, to the microsecond.
func TestTwoReadersGiveEachPictureTheCamerasTime(t *testing.T) {
	if testing.Short() {
		t.Skip("a live RTSP camera for 11 s per codec; skipped with -short")
	}
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.FPS, spec.MotionStart, spec.MotionEnd = 320, 240, 45, 15, 1, 44
	pics := videogen.Scene(t, spec)
	for _, codec := range []string{rtsptest.CodecH264, rtsptest.CodecH265, rtsptest.CodecMJPEG} {
		t.Run(codec, func(t *testing.T) {
			cam, err := rtsptest.New(spec, rtsptest.Options{Codec: codec})
			if err != nil {
				t.Fatal(err)
			}
			defer cam.Stop()
			twoReaders(t, cam, spec, pics)
		})
	}
}

func twoReaders(t *testing.T, cam *rtsptest.Server, spec videogen.Spec, pics []gocv.Mat) {
	var wg sync.WaitGroup
	results := make([][]timedPicture, 2)
	untimed := make([]int, 2)
	errs := make([]error, 2)
	for i, delay := range []time.Duration{0, 1500 * time.Millisecond} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay) // the second reader connects later, on purpose
			results[i], untimed[i], errs[i] = readTimed(t, cam.URL(), 11*time.Second-delay, pics)
		}()
	}
	wg.Wait()
	byTime := map[int64]int{}
	for i, timed := range results {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		t.Logf("reader %d: %d pictures with the camera's time, %d without", i, len(timed), untimed[i])
		if len(timed) < 30 {
			t.Fatalf("reader %d: only %d pictures with the camera's time", i, len(timed))
		}
		wrong := 0
		for k, p := range timed {
			n, ok := cam.SentAt(p.at)
			if !ok {
				t.Fatalf("reader %d: picture %d (of %d) of time %s, when the camera sent none; the first at %s", i, k, len(timed), p.at.Format(time.RFC3339Nano), timed[0].at.Format(time.RFC3339Nano))
			}
			if n%spec.Frames != p.scene {
				if wrong++; wrong <= 3 {
					t.Errorf("reader %d: the picture of time %s shows the scene's picture %d; the camera sent its picture %d then", i, p.at.Format(time.RFC3339Nano), p.scene, n%spec.Frames)
				}
			}
			byTime[p.at.UnixMicro()]++
		}
		if wrong > 0 {
			t.Errorf("reader %d: %d of %d pictures were not the camera's picture of their time", i, wrong, len(timed))
		}
	}
	both := 0
	for _, p := range results[1] {
		if byTime[p.at.UnixMicro()] == 2 {
			both++
		}
	}
	t.Logf("%d pictures read by both readers, with the same time", both)
	if both < len(results[1])*9/10 {
		t.Fatalf("only %d of the second reader's %d pictures have the time the first reader gave them", both, len(results[1]))
	}
}
