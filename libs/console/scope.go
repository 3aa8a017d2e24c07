package console

import (
	"encoding/json"
	"slices"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// scopeSnapshot is the snapshot as a person limited to cameras may see it:
// other cameras' workloads (capture:<camera>) leave the sites' lists and
// the workers' statuses, other cameras leave capture's camera lists and the
// sink's stats (whose totals become those of the person's cameras), and
// the workers' counters, which count every camera's frames, are withheld.
// What stays is the site's shared health: nodes, links, the bridge's
// backlog. A snapshot that does not
// parse is withheld, not shown whole.
func scopeSnapshot(b []byte, cameras []string) []byte {
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return []byte(`{"error":"snapshot withheld"}`)
	}
	allowed := func(camera string) bool { return slices.Contains(cameras, camera) }
	for i := range snap.Sites {
		s := &snap.Sites[i]
		s.Nodes, s.Workloads, s.Assignments = scopeRaw(s.Nodes, allowed), scopeRaw(s.Workloads, allowed), scopeRaw(s.Assignments, allowed)
	}
	for _, sv := range snap.Services {
		sv.Status = withoutCounters(scopeRaw(sv.Status, allowed))
		sv.Cameras = scopeRaw(sv.Cameras, allowed)
		sv.Stats = scopeStats(sv.Stats, allowed)
	}
	out, err := json.Marshal(snap)
	if err != nil {
		return []byte(`{"error":"snapshot withheld"}`)
	}
	return out
}

func scopeRaw(raw json.RawMessage, allowed func(string) bool) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	out, err := json.Marshal(scopeValue(v, allowed))
	if err != nil {
		return nil
	}
	return out
}

// scopeValue drops, from every list inside v, the items about a camera
// that is not allowed: a workload name "capture:<camera>" (a string, or an
// object's "name" or "workload") or an object's "cameraId".
func scopeValue(v any, allowed func(string) bool) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = scopeValue(x, allowed)
		}
		return t
	case []any:
		out := t[:0]
		for _, x := range t {
			if !aboutOtherCamera(x, allowed) {
				out = append(out, scopeValue(x, allowed))
			}
		}
		return out
	}
	return v
}

func aboutOtherCamera(x any, allowed func(string) bool) bool {
	camera := pipeline.CameraOfWorkload
	switch t := x.(type) {
	case string:
		c, ok := camera(t)
		return ok && !allowed(c)
	case map[string]any:
		if id, ok := t["cameraId"].(string); ok && !allowed(id) {
			return true
		}
		for _, k := range []string{"name", "workload"} {
			if w, ok := t[k].(string); ok {
				if c, ok := camera(w); ok && !allowed(c) {
					return true
				}
			}
		}
	}
	return false
}

// scopeStats keeps the sink's stats of the allowed cameras, and their
// totals.
func scopeStats(raw json.RawMessage, allowed func(string) bool) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var st map[string]any
	if json.Unmarshal(raw, &st) != nil {
		return nil
	}
	var frames, bytes, events float64
	var kept []any
	cams, _ := st["cameras"].([]any)
	for _, c := range cams {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if id, _ := m["cameraId"].(string); !allowed(id) {
			continue
		}
		kept = append(kept, m)
		frames += number(m["frames"])
		bytes += number(m["bytes"])
		events += number(m["events"])
	}
	st["cameras"], st["frames"], st["bytes"], st["events"], st["framesExpired"] = kept, frames, bytes, events, 0
	out, err := json.Marshal(st)
	if err != nil {
		return nil
	}
	return out
}

// number reads a JSON number the gateway may have written as a string
// (int64 fields).
func number(v any) float64 {
	switch t := v.(type) {
	case float64:
		return t
	case string:
		var f float64
		if json.Unmarshal([]byte(t), &f) == nil {
			return f
		}
	}
	return 0
}

// withoutCounters drops a worker status's counters (GetStatusResponse's
// status.counters).
func withoutCounters(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	if st, ok := v["status"].(map[string]any); ok {
		delete(st, "counters")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}
