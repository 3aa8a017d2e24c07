package placement

import (
	"strings"
	"testing"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func worker(id string, kinds []string, labels map[string]string) *cefiotv1.Worker {
	return &cefiotv1.Worker{Id: id, Node: "node-" + id, Kinds: kinds, Labels: labels, LeaseId: leaseOf(id)}
}

// leaseOf gives each test worker a distinct, stable lease.
func leaseOf(id string) int64 {
	var h int64 = 7
	for _, c := range id {
		h = h*31 + int64(c)
	}
	return h
}

func plan(wls []*cefiotv1.Workload, workers []*cefiotv1.Worker, current []*cefiotv1.Assignment) []Decision {
	return Plan(Input{Site: "edge", Workloads: wls, Workers: workers, Assignments: current})
}

func TestPlanAssignsEachWorkloadToAFittingWorker(t *testing.T) {
	wls := []*cefiotv1.Workload{
		{Name: "capture:cam-1", Kind: "capture", NodeSelector: map[string]string{"camera": "cam-1"}},
		{Name: "enrich", Kind: "enrich"},
		{Name: "bridge", Kind: "bridge"},
	}
	workers := []*cefiotv1.Worker{
		worker("c2", []string{"capture"}, map[string]string{"camera": "cam-2"}),
		worker("c1", []string{"capture"}, map[string]string{"camera": "cam-1"}),
		worker("e1", []string{"enrich", "bridge"}, nil),
		worker("e2", []string{"enrich", "bridge"}, nil),
	}
	got := map[string]string{}
	for _, d := range plan(wls, workers, nil) {
		got[d.Workload] = d.Assign.GetWorkerId()
	}
	want := map[string]string{"capture:cam-1": "c1", "enrich": "e2", "bridge": "e1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s on %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestPlanKeepsLiveOwnerAndMovesFromDeadOne(t *testing.T) {
	wls := []*cefiotv1.Workload{{Name: "enrich", Kind: "enrich"}, {Name: "bridge", Kind: "bridge"}}
	workers := []*cefiotv1.Worker{worker("a", []string{"enrich", "bridge"}, nil), worker("b", []string{"enrich", "bridge"}, nil)}
	current := []*cefiotv1.Assignment{
		{Workload: "enrich", WorkerId: "b", Epoch: 5, LeaseId: leaseOf("b")},
		{Workload: "bridge", WorkerId: "gone", Epoch: 6, LeaseId: 99},
	}
	ds := plan(wls, workers, current)
	if len(ds) != 1 || ds[0].Workload != "bridge" || ds[0].Assign.GetWorkerId() != "a" {
		t.Fatalf("want only bridge moved to a, got %+v", ds)
	}
	if !strings.Contains(ds[0].Reason, "gone") {
		t.Errorf("reason %q should name the dead worker", ds[0].Reason)
	}
}

func TestPlanReleasesDeadOwnerWhenNothingFitsAndDropsUndeclared(t *testing.T) {
	wls := []*cefiotv1.Workload{{Name: "sink", Kind: "sink"}}
	current := []*cefiotv1.Assignment{
		{Workload: "sink", WorkerId: "dead"},
		{Workload: "old", WorkerId: "x"},
	}
	ds := plan(wls, nil, current)
	if len(ds) != 2 || ds[0].Workload != "sink" || ds[0].Assign != nil || ds[1].Workload != "old" || ds[1].Assign != nil {
		t.Fatalf("got %+v", ds)
	}
}

func TestParseSpecValidates(t *testing.T) {
	good := `
site: edge
workloads:
  - name: capture:cam-1
    kind: capture
    params: {camera: cam-1, source: /v.avi}
  - name: enrich
    kind: enrich
`
	s, err := ParseSpec([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if ws := s.Proto(); len(ws) != 2 || ws[0].Name != "capture:cam-1" || ws[0].Params["source"] != "/v.avi" {
		t.Fatalf("got %v", ws)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":  {"site: edge\nworkloadz: []\n", "workloadz"},
		"bad kind":       {"site: edge\nworkloads:\n - {name: x, kind: nope}\n", "workloads[0].kind"},
		"duplicate":      {"site: edge\nworkloads:\n - {name: x, kind: enrich}\n - {name: x, kind: enrich}\n", "workloads[1].name"},
		"capture params": {"site: edge\nworkloads:\n - {name: c, kind: capture}\n", "workloads[0].params"},
		"bad site":       {"site: 'a/b'\n", "site"},
	} {
		_, err := ParseSpec([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error naming %q, got %v", name, tc.want, err)
		}
	}
}

func TestPlanVoidsAssignmentOfAnOldLease(t *testing.T) {
	// Worker a was partitioned, its lease expired, and it registered again
	// with a new lease: its old assignment is void and gets a new epoch,
	// even though nothing else fits.
	wls := []*cefiotv1.Workload{{Name: "enrich", Kind: "enrich"}}
	a := worker("a", []string{"enrich"}, nil)
	ds := plan(wls, []*cefiotv1.Worker{a}, []*cefiotv1.Assignment{{Workload: "enrich", WorkerId: "a", LeaseId: 1, Epoch: 3}})
	if len(ds) != 1 || ds[0].Assign.GetWorkerId() != "a" || ds[0].Assign.GetLeaseId() != a.GetLeaseId() || !strings.Contains(ds[0].Reason, "lost the lease") {
		t.Fatalf("want enrich rebound to a's new lease, got %+v", ds)
	}
}

func TestPlanCordonDrainAndSpread(t *testing.T) {
	kinds := []string{"capture"}
	w1 := worker("w1", kinds, nil)
	w2 := worker("w2", kinds, nil)
	w3 := worker("w3", kinds, nil)
	w2b := &cefiotv1.Worker{Id: "w2b", Node: w2.Node, Kinds: kinds, LeaseId: 77}
	var wls []*cefiotv1.Workload
	for _, c := range []string{"c1", "c2", "c3"} {
		wls = append(wls, &cefiotv1.Workload{Name: "capture:" + c, Kind: "capture", SpreadBy: "node"})
	}
	// Spread: one per node, even though node-w2 has two workers.
	in := Input{Site: "edge", Workloads: wls, Workers: []*cefiotv1.Worker{w1, w2, w2b, w3}}
	nodes := map[string]int{}
	for _, d := range Plan(in) {
		nodes[d.Assign.GetNode()]++
	}
	if len(nodes) != 3 {
		t.Fatalf("spread by node: got %v", nodes)
	}
	// Cordoned: nothing new goes there, what runs there stays.
	in.Nodes = []*cefiotv1.NodeState{{Name: "node-w3", Cordoned: true}}
	for _, d := range Plan(in) {
		if d.Assign.GetNode() == "node-w3" {
			t.Fatalf("placed on a cordoned node: %+v", d)
		}
	}
	current := []*cefiotv1.Assignment{{Workload: "capture:c1", WorkerId: "w3", Node: "node-w3", LeaseId: w3.LeaseId}}
	in.Workloads, in.Assignments = wls[:1], current
	if ds := Plan(in); len(ds) != 0 {
		t.Fatalf("cordon moved a running workload: %+v", ds)
	}
	// Drained: it moves.
	in.Nodes = []*cefiotv1.NodeState{{Name: "node-w3", Cordoned: true, Drained: true}}
	ds := Plan(in)
	if len(ds) != 1 || ds[0].Assign.GetNode() == "node-w3" || !strings.Contains(ds[0].Reason, "drained") {
		t.Fatalf("drain: got %+v", ds)
	}
	// Drained but nothing else fits: it stays.
	in.Workers = []*cefiotv1.Worker{w3}
	if ds := Plan(in); len(ds) != 0 {
		t.Fatalf("drain with no other fit must leave it: %+v", ds)
	}
}

func TestPlanSiteMovesAndBridgeTopicsFollowPlacement(t *testing.T) {
	wls := []*cefiotv1.Workload{
		{Name: "enrich", Kind: "enrich", Site: "cloud"},
		{Name: "bridge", Kind: "bridge"},
	}
	b := worker("b", []string{"enrich", "bridge"}, nil)
	current := []*cefiotv1.Assignment{
		{Workload: "enrich", WorkerId: "b", LeaseId: b.LeaseId},
		{Workload: "bridge", WorkerId: "b", LeaseId: b.LeaseId},
	}
	ds := plan(wls, []*cefiotv1.Worker{b}, current)
	got := map[string]Decision{}
	for _, d := range ds {
		got[d.Workload] = d
	}
	if d := got["enrich"]; d.Assign != nil || !strings.Contains(d.Reason, "moved to site cloud") {
		t.Errorf("enrich moved away must be unassigned here: %+v", d)
	}
	if d := got["bridge"]; d.Assign.GetWorkerId() != "b" || d.Assign.GetParams()["topics"] != "frames.enriched,frames.raw" {
		t.Errorf("bridge must forward frames.raw for the cloud enrich: %+v", d)
	}
	// Once the assignment carries the params, nothing changes.
	current[1].Params = map[string]string{"topics": "frames.enriched,frames.raw"}
	ds = plan(wls, []*cefiotv1.Worker{b}, current[1:])
	if len(ds) != 0 {
		t.Fatalf("stable placement rewrote: %+v", ds)
	}
	// Back home: the bridge drops frames.raw again.
	wls[0].Site = ""
	ds = plan(wls, []*cefiotv1.Worker{b}, current)
	for _, d := range ds {
		if d.Workload == "bridge" && len(d.Assign.GetParams()) != 0 {
			t.Errorf("bridge params after the move back: %v", d.Assign.GetParams())
		}
	}
}

func TestChooseNamesWhyNothingFits(t *testing.T) {
	wl := &cefiotv1.Workload{Name: "capture:c1", Kind: "capture", NodeSelector: map[string]string{"camera": "c1"}}
	w := worker("a", []string{"capture"}, map[string]string{"camera": "c1"})
	in := Input{Site: "edge", Workloads: []*cefiotv1.Workload{wl}, Workers: []*cefiotv1.Worker{w}}
	if _, err := Choose(in, wl, "", "", "a"); err == nil || !strings.Contains(err.Error(), "no live, schedulable worker") {
		t.Fatalf("want an error, got %v", err)
	}
	if got, err := Choose(in, wl, "node-a", "", "x"); err != nil || got.GetId() != "a" {
		t.Fatalf("node target: %v %v", got, err)
	}
	if _, err := Choose(in, wl, "", "zzz", ""); err == nil || !strings.Contains(err.Error(), "not live") {
		t.Fatalf("unknown worker: %v", err)
	}
}
