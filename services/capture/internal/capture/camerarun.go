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

	mu       sync.Mutex
	file     Overrides
	settings Settings
	state    CameraState
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
}

func newCameraRun(id string, params, file Overrides) *CameraRun {
	r := &CameraRun{id: id, params: params, file: file}
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
	return r.state
}

func (r *CameraRun) update(f func(*CameraState)) {
	r.mu.Lock()
	f(&r.state)
	r.mu.Unlock()
}
