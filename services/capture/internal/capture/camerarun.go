package capture

import (
	"sync"
	"sync/atomic"
	"time"
)

// CameraRun is the live state of one running camera.
type CameraRun struct {
	id     string
	params Overrides

	version atomic.Int64 // bumped on every settings change

	now func() time.Time // the clock of frame arrivals

	mu       sync.Mutex
	file     Overrides
	settings Settings
	state    CameraState
	fps      *fpsMeter
}

// CameraState is what the admin API reports about a running camera.
type CameraState struct {
	Running       bool
	Online        bool
	Source        string
	LastFrame     time.Time
	StatusChanged time.Time
	Frames        int64
	MotionFrames  int64
	Events        int64
	Reconnects    int64
	GlobalChanges int64
	LastError     string
	// MeasuredFPS is the rate at which the source delivered frames over
	// the last fpsWindow, by arrival time; 0 once it went offline.
	MeasuredFPS float64
	// SpoolFrames and SpoolBytes wait in the disk spool; SpoolDropped
	// were dropped from it when it was full, LastSpoolGap says the latest
	// such gap.
	SpoolFrames, SpoolBytes, SpoolDropped int64
	LastSpoolGap                          string
	// Decoder is "software" or the hardware acceleration decoding the
	// source; empty for image folders and before a stream connects.
	Decoder string
}

func newCameraRun(id string, params, file Overrides) *CameraRun {
	r := &CameraRun{id: id, params: params, file: file, now: time.Now, fps: newFPSMeter(fpsWindow, fpsMaxFrames)}
	r.settings = DefaultSettings().Apply(params).Apply(file)
	r.state.Running = true
	return r
}

// Settings returns the current effective settings.
func (r *CameraRun) Settings() Settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settings
}

// Version changes whenever the settings do.
func (r *CameraRun) Version() int64 { return r.version.Load() }

func (r *CameraRun) setFile(o Overrides) {
	r.mu.Lock()
	s := DefaultSettings().Apply(r.params).Apply(o)
	if err := s.Validate(); err == nil {
		r.file, r.settings = o, s
	}
	r.mu.Unlock()
	r.version.Add(1)
}

func (r *CameraRun) setRunning(v bool) {
	r.mu.Lock()
	r.state.Running = v
	r.mu.Unlock()
}

// State returns a copy of the live state.
func (r *CameraRun) State() CameraState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.MeasuredFPS = r.fps.rate(r.now())
	return st
}

// frameArrived counts a frame the source delivered, captured at capture.
func (r *CameraRun) frameArrived(capture time.Time) {
	r.mu.Lock()
	r.state.Frames++
	r.state.LastFrame = capture
	r.fps.arrived(r.now())
	r.mu.Unlock()
}

// sourceStopped drops the measured rate to 0 at once, as the source
// delivers no more frames.
func (r *CameraRun) sourceStopped() {
	r.mu.Lock()
	r.fps.reset()
	r.mu.Unlock()
}

func (r *CameraRun) update(f func(*CameraState)) {
	r.mu.Lock()
	f(&r.state)
	r.mu.Unlock()
}
