package capture

import (
	"math"
	"testing"
	"time"
)

var fpsT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func near(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

func TestFPSMeterSteadySource(t *testing.T) {
	m := newFPSMeter(5*time.Second, 1024)
	if got := m.rate(fpsT0); got != 0 {
		t.Fatalf("no frames: %v fps, want 0", got)
	}
	at := fpsT0
	for i := 0; i < 50; i++ {
		at = fpsT0.Add(time.Duration(i) * 40 * time.Millisecond)
		m.arrived(at)
	}
	if got := m.rate(at); !near(got, 25) {
		t.Fatalf("50 frames 40 ms apart: %v fps, want 25", got)
	}
	// A long steady run: the window holds the last 5 s only.
	for i := 50; i < 1000; i++ {
		at = fpsT0.Add(time.Duration(i) * 40 * time.Millisecond)
		m.arrived(at)
	}
	if got := m.rate(at); math.Abs(got-25) > 0.01 {
		t.Fatalf("steady 25 fps for 40 s: %v fps", got)
	}
	// Then one frame a second: after a full window the old rate is gone.
	for i := 1; i <= 6; i++ {
		at = at.Add(time.Second)
		m.arrived(at)
	}
	if got := m.rate(at); !near(got, 1) {
		t.Fatalf("1 fps after a window of 25 fps: %v fps, want 1", got)
	}
}

func TestFPSMeterStoppedSourceDropsToZero(t *testing.T) {
	m := newFPSMeter(5*time.Second, 1024)
	var last time.Time
	for i := 0; i < 50; i++ {
		last = fpsT0.Add(time.Duration(i) * 40 * time.Millisecond)
		m.arrived(last)
	}
	// Decays while no frame comes, is 0 once none is left in the window.
	mid := m.rate(last.Add(2 * time.Second))
	if mid <= 0 || mid >= 25 {
		t.Fatalf("2 s after the last frame: %v fps, want between 0 and 25", mid)
	}
	if got := m.rate(last.Add(5*time.Second + time.Millisecond)); got != 0 {
		t.Fatalf("no frame for more than the window: %v fps, want 0", got)
	}
	// reset: 0 at once.
	for i := 0; i < 10; i++ {
		m.arrived(last.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	m.reset()
	if got := m.rate(last.Add(time.Second)); got != 0 {
		t.Fatalf("after reset: %v fps, want 0", got)
	}
	if got := newFPSMeter(time.Second, 8); got.rate(fpsT0) != 0 {
		t.Fatal("empty meter not 0")
	}
}

func TestFPSMeterBoundedMemoryKeepsRate(t *testing.T) {
	// 1000 fps for 3 s through a ring of 64: the rate of the newest 64.
	m := newFPSMeter(5*time.Second, 64)
	var at time.Time
	for i := 0; i < 3000; i++ {
		at = fpsT0.Add(time.Duration(i) * time.Millisecond)
		m.arrived(at)
	}
	if got := m.rate(at); !near(got, 1000) {
		t.Fatalf("1000 fps through a ring of 64: %v fps", got)
	}
	if m.n != 64 {
		t.Fatalf("ring holds %d, want 64", m.n)
	}
}

func TestCameraRunMeasuredFPS(t *testing.T) {
	r := newCameraRun("cam-1", Overrides{}, Overrides{})
	now := fpsT0
	r.now = func() time.Time { return now }
	for i := 0; i < 50; i++ {
		now = fpsT0.Add(time.Duration(i) * 40 * time.Millisecond)
		r.frameArrived(now.Add(-time.Hour)) // capture time is not the arrival time
	}
	st := r.State()
	if !near(st.MeasuredFPS, 25) || st.Frames != 50 || !st.LastFrame.Equal(now.Add(-time.Hour)) {
		t.Fatalf("state after 50 frames 40 ms apart: fps %v frames %d last %s", st.MeasuredFPS, st.Frames, st.LastFrame)
	}
	now = now.Add(6 * time.Second)
	if got := r.State().MeasuredFPS; got != 0 {
		t.Fatalf("6 s without a frame: %v fps, want 0", got)
	}
	for i := 0; i < 10; i++ {
		now = now.Add(100 * time.Millisecond)
		r.frameArrived(now)
	}
	if got := r.State().MeasuredFPS; !near(got, 10) {
		t.Fatalf("10 frames 100 ms apart: %v fps, want 10", got)
	}
	r.sourceStopped()
	if got := r.State().MeasuredFPS; got != 0 {
		t.Fatalf("source stopped: %v fps, want 0", got)
	}
}
