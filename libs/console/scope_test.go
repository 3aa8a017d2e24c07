package console

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestScopeSnapshotShowsOnlyTheCameras: a person limited to cam-1 sees no
// trace of cam-2 in the live snapshot: not its workload (in workloads,
// assignments, a node's list or a worker's status), not its camera entry,
// not its stats; and no worker's counters, which count every camera.
func TestScopeSnapshotShowsOnlyTheCameras(t *testing.T) {
	snap := Snapshot{
		Sites: []SiteState{{
			Site:        "edge",
			Nodes:       json.RawMessage(`[{"name":"n1","workloads":["capture:cam-1","capture:cam-2","enrich"]}]`),
			Workloads:   json.RawMessage(`[{"name":"capture:cam-1"},{"name":"capture:cam-2"},{"name":"enrich"}]`),
			Assignments: json.RawMessage(`[{"workload":"capture:cam-2","node":"n1"},{"workload":"enrich","node":"n1"}]`),
		}},
		Services: map[string]*ServiceState{
			"capture": {Kind: "capture", Cameras: json.RawMessage(`[{"cameraId":"cam-1"},{"cameraId":"cam-2"}]`),
				Status: json.RawMessage(`{"status":{"node":"n1","counters":{"published":4242},"workloads":[{"name":"capture:cam-1"},{"name":"capture:cam-2"}]}}`)},
			"sink": {Kind: "sink", Stats: json.RawMessage(`{"frames":"150","bytes":"3000","events":"3","cameras":[
				{"cameraId":"cam-1","frames":"100","bytes":"2000","events":"2"},{"cameraId":"cam-2","frames":"50","bytes":"1000","events":"1"}]}`)},
		},
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	out := string(scopeSnapshot(b, []string{"cam-1"}))
	if strings.Contains(out, "cam-2") {
		t.Fatalf("cam-2 shows in the scoped snapshot: %s", out)
	}
	if strings.Contains(out, "4242") || strings.Contains(out, "published") {
		t.Errorf("the workers' counters (every camera's frames) show in the scoped snapshot: %s", out)
	}
	for _, want := range []string{`"capture:cam-1"`, `"enrich"`, `"cameraId":"cam-1"`, `"frames":100`, `"events":2`, `"node":"n1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in %s", want, out)
		}
	}
	if got := string(scopeSnapshot([]byte("not json"), []string{"cam-1"})); strings.Contains(got, "not json") {
		t.Error("an unparsable snapshot was passed on whole")
	}
}
