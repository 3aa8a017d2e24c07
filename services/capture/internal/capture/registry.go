package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// cameraFile is the YAML of the camera settings file (-cameras):
//
//	cameras:
//	  door:
//	    source: rtsp://user:pass@192.0.2.10/stream1
//	    fps: 5
//	    mask: [[[0, 0], [200, 0], [200, 80], [0, 80]]]
//	    pre_capture: 10
//	    post_capture: 25
type cameraFile struct {
	Cameras map[string]Overrides `yaml:"cameras"`
}

// errUnknownCamera marks a camera that is neither running nor in the file.
var errUnknownCamera = errors.New("unknown camera")

// Registry holds the cameras of a capture process: their settings from the
// settings file, and the live state of those that run. Updates through the
// admin API are written to the file and applied to the running camera at
// its next frame; edits of the file by hand are picked up too (polled).
type Registry struct {
	path   string // "" keeps updates in memory only
	logger *slog.Logger

	mu      sync.Mutex
	file    map[string]Overrides
	modTime time.Time
	running map[string]*CameraRun
}

// NewRegistry loads the settings file (a missing file is an empty one when
// path is set, so the API can create it).
func NewRegistry(path string, logger *slog.Logger) (*Registry, error) {
	r := &Registry{path: path, logger: logger, file: map[string]Overrides{}, running: map[string]*CameraRun{}}
	if path != "" {
		if err := r.reload(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func readCameraFile(path string) (map[string]Overrides, time.Time, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Overrides{}, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var f cameraFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, time.Time{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if f.Cameras == nil {
		f.Cameras = map[string]Overrides{}
	}
	for id, o := range f.Cameras {
		if !cameraRE.MatchString(id) {
			return nil, time.Time{}, fmt.Errorf("%s: cameras.%s: camera id must match %s", path, id, cameraRE)
		}
		if err := DefaultSettings().Apply(withSource(o)).Validate(); err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: cameras.%s.%w", path, id, err)
		}
	}
	return f.Cameras, fi.ModTime(), nil
}

// withSource gives o a placeholder source when it has none, so that the
// other fields can be validated (the source may come from the workload).
func withSource(o Overrides) Overrides {
	if o.Source == nil {
		s := "-"
		o.Source = &s
	}
	return o
}

func (r *Registry) reload() error {
	cams, mod, err := readCameraFile(r.path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file, r.modTime = cams, mod
	for id, run := range r.running {
		run.setFile(cams[id])
	}
	return nil
}

// Watch re-reads the file when it changes, until ctx ends. A file that no
// longer parses is reported and ignored (the last good settings stay).
func (r *Registry) Watch(ctx context.Context, every time.Duration) {
	if r.path == "" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(r.path)
		if err != nil {
			continue
		}
		r.mu.Lock()
		changed := !fi.ModTime().Equal(r.modTime)
		r.mu.Unlock()
		if !changed {
			continue
		}
		if err := r.reload(); err != nil {
			r.logger.Error("camera settings file changed but is invalid; keeping the previous settings", "file", r.path, "err", err)
			r.mu.Lock()
			r.modTime = fi.ModTime()
			r.mu.Unlock()
			continue
		}
		r.logger.Info("camera settings file reloaded", "file", r.path)
	}
}

// save writes the file atomically; r.mu is held.
func (r *Registry) save() error {
	b, err := yaml.Marshal(cameraFile{Cameras: r.file})
	if err != nil {
		return err
	}
	dir := filepath.Dir(r.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(r.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone already once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	if err := os.Rename(tmp.Name(), r.path); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	if fi, err := os.Stat(r.path); err == nil {
		r.modTime = fi.ModTime()
	}
	return nil
}

// Attach registers a running camera whose workload gave params; its
// settings are defaults, then params, then the file's entry.
func (r *Registry) Attach(id string, params Overrides) (*CameraRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[id]; ok {
		return nil, fmt.Errorf("camera %s already runs in this process", id)
	}
	run := newCameraRun(id, params, r.file[id])
	if err := run.Settings().Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: %w", id, err)
	}
	r.running[id] = run
	return run, nil
}

// Detach forgets a camera whose workload ended.
func (r *Registry) Detach(run *CameraRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[run.id] == run {
		delete(r.running, run.id)
	}
	run.setRunning(false)
}

// Update merges u into the camera's file entry, validates the result,
// saves the file and applies it to the running camera.
func (r *Registry) Update(id string, u Overrides) (Settings, error) {
	if !cameraRE.MatchString(id) {
		return Settings{}, fmt.Errorf("camera_id %q: must match %s", id, cameraRE)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	merged := r.file[id].Merge(u)
	run := r.running[id]
	var eff Settings
	if run != nil {
		eff = DefaultSettings().Apply(run.params).Apply(merged)
	} else {
		eff = DefaultSettings().Apply(merged)
		if merged.Source == nil {
			eff.Source = "-" // the workload may give it
		}
	}
	if err := eff.Validate(); err != nil {
		return Settings{}, err
	}
	old, had := r.file[id]
	r.file[id] = merged
	if r.path != "" {
		if err := r.save(); err != nil {
			if had {
				r.file[id] = old
			} else {
				delete(r.file, id)
			}
			return Settings{}, err
		}
	}
	if run != nil {
		run.setFile(merged)
	}
	return eff, nil
}

// Camera returns one camera's settings and, if it runs, its run.
func (r *Registry) Camera(id string) (Settings, *CameraRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.running[id]; run != nil {
		return run.Settings(), run, nil
	}
	if o, ok := r.file[id]; ok {
		return DefaultSettings().Apply(o), nil, nil
	}
	return Settings{}, nil, fmt.Errorf("camera %q: %w", id, errUnknownCamera)
}

// IDs lists the known cameras, sorted.
func (r *Registry) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.file {
		ids = append(ids, id)
	}
	for id := range r.running {
		if _, ok := r.file[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
